package catalog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Teacher is someone who uploads lectures. They authenticate with a bearer token that is shown once, at
// creation; the catalog keeps only its SHA-256.
type Teacher struct {
	ID   string
	Name string
	// School is the school the teacher teaches at, as the region map spells it (empty: none given).
	// Students of a school are served by its region, so the playback URLs of the teacher's lectures
	// name that region.
	School    string
	CreatedAt time.Time
}

// maxSchoolLen bounds a school's name or code.
const maxSchoolLen = 200

// cleanSchool trims school and checks it is a plausible name or code.
func cleanSchool(school string) (string, error) {
	school = strings.TrimSpace(school)
	if len(school) > maxSchoolLen {
		return "", fmt.Errorf("%w: school is longer than %d bytes", ErrInvalid, maxSchoolLen)
	}
	if strings.ContainsFunc(school, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", fmt.Errorf("%w: school contains control characters", ErrInvalid)
	}
	return school, nil
}

// Course groups a teacher's lectures. Titles are unique per teacher.
type Course struct {
	ID        string
	TeacherID string
	Title     string
	CreatedAt time.Time
}

// TokenPrefix starts every teacher token, so a leaked one is recognisable (secret scanners, logs).
const TokenPrefix = "lt_"

// idAlphabet spells ids with [a-z2-7] only: safe in URL paths, object keys and file names, and
// case-insensitive file systems cannot fold two ids together.
const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// newID returns 16 characters (80 random bits): collisions are negligible and ids stay short in URLs.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base32.NewEncoding(idAlphabet).WithPadding(base32.NoPadding).EncodeToString(b[:])
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// hashToken is what is stored and looked up. A fast hash is right here: tokens carry 256 random bits,
// so there is nothing to brute-force, and the lookup goes through an index on the hash, never comparing
// the secret itself byte by byte.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func millis(t time.Time) int64 { return t.UnixMilli() }
func fromMillis(ms int64) time.Time {
	return time.UnixMilli(ms).UTC()
}

// now is truncated to the stored precision so values returned by writes equal what reads return.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// AddTeacher creates a teacher of no school and returns their token. The token is not stored and
// cannot be shown again.
func (c *Catalog) AddTeacher(ctx context.Context, name string) (Teacher, string, error) {
	return c.AddSchoolTeacher(ctx, name, "")
}

// AddSchoolTeacher is AddTeacher for a teacher of school (see Teacher.School).
func (c *Catalog) AddSchoolTeacher(ctx context.Context, name, school string) (Teacher, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Teacher{}, "", fmt.Errorf("%w: teacher name is empty", ErrInvalid)
	}
	school, err := cleanSchool(school)
	if err != nil {
		return Teacher{}, "", err
	}
	t := Teacher{ID: newID(), Name: name, School: school, CreatedAt: now()}
	token := newToken()
	_, err = c.b.db().exec(ctx, `INSERT INTO teachers (id, name, school, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, t.Name, t.School, hashToken(token), millis(t.CreatedAt))
	if err != nil {
		return Teacher{}, "", fmt.Errorf("catalog: add teacher: %w", err)
	}
	return t, token, nil
}

// TeacherByToken returns the teacher the token belongs to, or an error for which IsNotFound is true.
func (c *Catalog) TeacherByToken(ctx context.Context, token string) (Teacher, error) {
	if !strings.HasPrefix(token, TokenPrefix) {
		return Teacher{}, fmt.Errorf("catalog: teacher token: %w", ErrNotFound)
	}
	var t Teacher
	var created int64
	err := c.b.db().queryRow(ctx, `SELECT id, name, school, created_at FROM teachers WHERE token_hash = $1`, hashToken(token)).
		Scan(&t.ID, &t.Name, &t.School, &created)
	if err != nil {
		return Teacher{}, fmt.Errorf("catalog: teacher token: %w", err)
	}
	t.CreatedAt = fromMillis(created)
	return t, nil
}

// GetTeacher returns a teacher by id, or an error for which IsNotFound is true.
func (c *Catalog) GetTeacher(ctx context.Context, id string) (Teacher, error) {
	t := Teacher{ID: id}
	var created int64
	err := c.b.db().queryRow(ctx, `SELECT name, school, created_at FROM teachers WHERE id = $1`, id).Scan(&t.Name, &t.School, &created)
	if err != nil {
		return Teacher{}, fmt.Errorf("catalog: teacher %q: %w", id, err)
	}
	t.CreatedAt = fromMillis(created)
	return t, nil
}

// SetTeacherSchool records the school teacher id teaches at ("": none). IsNotFound if there is no
// such teacher, IsInvalid for a school name that is too long or holds control characters.
func (c *Catalog) SetTeacherSchool(ctx context.Context, id, school string) error {
	school, err := cleanSchool(school)
	if err != nil {
		return err
	}
	n, err := c.b.db().exec(ctx, `UPDATE teachers SET school = $2 WHERE id = $1`, id, school)
	if err != nil {
		return fmt.Errorf("catalog: set school of teacher %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("catalog: set school of teacher %q: %w", id, ErrNotFound)
	}
	return nil
}

// EnsureCourse returns the teacher's course with this title, creating it if needed. Concurrent calls with
// the same title get the same course. The teacher must exist (IsNotFound otherwise).
func (c *Catalog) EnsureCourse(ctx context.Context, teacherID, title string) (Course, error) {
	title = strings.TrimSpace(title)
	if title == "" {
		return Course{}, fmt.Errorf("%w: course title is empty", ErrInvalid)
	}
	var co Course
	err := c.b.inTx(ctx, func(q dbtx, _ insertFunc) error {
		var one int
		if err := q.queryRow(ctx, `SELECT 1 FROM teachers WHERE id = $1`, teacherID).Scan(&one); err != nil {
			return fmt.Errorf("teacher %q: %w", teacherID, err)
		}
		// ON CONFLICT DO NOTHING, then read back: whoever inserted first wins, and nobody sees a
		// unique-violation error (which would also abort a PostgreSQL transaction).
		if _, err := q.exec(ctx, `INSERT INTO courses (id, teacher_id, title, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (teacher_id, title) DO NOTHING`, newID(), teacherID, title, millis(now())); err != nil {
			return err
		}
		var created int64
		err := q.queryRow(ctx, `SELECT id, teacher_id, title, created_at FROM courses WHERE teacher_id = $1 AND title = $2`,
			teacherID, title).Scan(&co.ID, &co.TeacherID, &co.Title, &created)
		co.CreatedAt = fromMillis(created)
		return err
	})
	if err != nil {
		return Course{}, fmt.Errorf("catalog: ensure course: %w", err)
	}
	return co, nil
}

// GetCourse returns a course by id, or an error for which IsNotFound is true.
func (c *Catalog) GetCourse(ctx context.Context, id string) (Course, error) {
	var co Course
	var created int64
	err := c.b.db().queryRow(ctx, `SELECT id, teacher_id, title, created_at FROM courses WHERE id = $1`, id).
		Scan(&co.ID, &co.TeacherID, &co.Title, &created)
	if err != nil {
		return Course{}, fmt.Errorf("catalog: course %q: %w", id, err)
	}
	co.CreatedAt = fromMillis(created)
	return co, nil
}

// ListCourses returns the teacher's courses, oldest first. An unknown teacher has no courses.
func (c *Catalog) ListCourses(ctx context.Context, teacherID string) ([]Course, error) {
	rs, err := c.b.db().query(ctx, `SELECT id, teacher_id, title, created_at FROM courses WHERE teacher_id = $1
		ORDER BY created_at, id`, teacherID)
	if err != nil {
		return nil, fmt.Errorf("catalog: list courses: %w", err)
	}
	defer rs.Close()
	var out []Course
	for rs.Next() {
		var co Course
		var created int64
		if err := rs.Scan(&co.ID, &co.TeacherID, &co.Title, &created); err != nil {
			return nil, fmt.Errorf("catalog: list courses: %w", err)
		}
		co.CreatedAt = fromMillis(created)
		out = append(out, co)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("catalog: list courses: %w", err)
	}
	return out, nil
}

// RevokeTeacher removes a teacher's access: their token stops working at once (IsNotFound from
// TeacherByToken), so the API answers it with 401. Their lectures stay published and keep playing for
// students; a school leaving a course online after its teacher left is the common case. IsNotFound if
// there is no such teacher.
func (c *Catalog) RevokeTeacher(ctx context.Context, id string) error {
	// token_hash is NOT NULL UNIQUE; no token hashes to "revoked:...".
	n, err := c.b.db().exec(ctx, `UPDATE teachers SET token_hash = $2 WHERE id = $1`, id, "revoked:"+id)
	if err != nil {
		return fmt.Errorf("catalog: revoke teacher %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("catalog: revoke teacher %q: %w", id, ErrNotFound)
	}
	return nil
}
