package ingest

import (
	"context"
	"sync"
	"time"
)

// schoolTTL is how long a teacher's school is remembered: a change of school (`lectern teacher
// school`) reaches new playback URLs within it, and a course page of 200 lectures costs one lookup.
const schoolTTL = time.Minute

// maxSchools bounds the memory of schools; past it the memory starts over.
const maxSchools = 10000

// schools remembers teachers' schools for a while.
type schools struct {
	mu   sync.Mutex
	byID map[string]knownSchool
}

type knownSchool struct {
	school string
	until  time.Time
}

// playbackRegion is the region for the playback tokens of teacherID's lectures: the region that serves
// the teacher's school (Config.SchoolRegion), or "" without a school, a region for it, or when the
// catalog cannot be read (the router then goes by the student's network).
func (s *Service) playbackRegion(ctx context.Context, teacherID string) string {
	if s.cfg.SchoolRegion == nil || teacherID == "" {
		return ""
	}
	now := time.Now()
	s.schools.mu.Lock()
	k, ok := s.schools.byID[teacherID]
	s.schools.mu.Unlock()
	if !ok || now.After(k.until) {
		t, err := s.cfg.Catalog.GetTeacher(ctx, teacherID)
		if err != nil {
			s.log.Warn("playback region: read the teacher's school", "teacher", teacherID, "err", err)
			return ""
		}
		k = knownSchool{school: t.School, until: now.Add(schoolTTL)}
		s.schools.mu.Lock()
		if s.schools.byID == nil || len(s.schools.byID) >= maxSchools {
			s.schools.byID = make(map[string]knownSchool)
		}
		s.schools.byID[teacherID] = k
		s.schools.mu.Unlock()
	}
	if k.school == "" {
		return ""
	}
	return s.cfg.SchoolRegion(k.school)
}
