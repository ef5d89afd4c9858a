// Package plan is the capacity-planning arithmetic of `lectern plan`: from how many students watch at
// once, in how many regions, and what the ladder's rungs cost, it works out the edges each region
// needs, what reaches the origin, what the lectures take in storage and how many transcode workers
// keep up with uploads.
//
// # Model
//
// Students are spread evenly over the regions and play VOD HLS: one request per segment duration per
// rendition they play (two with Lectern's separate audio rendition), each student downloading at the
// average rate of the rung they watch. An edge serves at most its NIC's usable rate and its cores'
// measured requests per second; a region needs the larger of the two counts, plus headroom. With peer
// groups a region's edges act as one cache (each object is fetched from the origin once per region),
// so the target hit ratio is the region's, and the origin sees the misses of every region.
//
// Every figure comes with the formula that produced it, numbers filled in ([Result.Lines]), so a plan
// can be checked by hand.
package plan

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Rung is one rendition of the ladder as the plan sees it.
type Rung struct {
	Name string `json:"name"`
	// Rate is what one student watching this rung downloads on average, in bits per second, audio
	// included (a Lectern master's AVERAGE-BANDWIDTH).
	Rate float64 `json:"rate_bps"`
	// Share is the fraction of the students watching this rung.
	Share float64 `json:"share"`
}

// Inputs are the plan's inputs; each field is a `lectern plan` flag.
type Inputs struct {
	Students int    `json:"students"` // watching at once
	Regions  int    `json:"regions"`
	Rungs    []Rung `json:"rungs"`
	// AudioRate is the bit rate of one audio rendition every rung plays and includes in its Rate
	// (Lectern's video lectures); 0 when each rung carries its own audio. Stored once.
	AudioRate float64 `json:"audio_rate_bps"`
	// SeparateAudio: players fetch an audio segment beside each video segment.
	SeparateAudio bool `json:"separate_audio"`

	NIC          float64 `json:"edge_nic_bps"`     // an edge's link, bits per second
	NICUsable    float64 `json:"edge_nic_usable"`  // the fraction of the link an edge can fill
	EdgeCores    int     `json:"edge_cores"`       // cores serving requests on an edge
	CoreRequests float64 `json:"core_requests_ps"` // cache hits per second one core serves

	HitRatio       float64 `json:"hit_ratio"`       // a region's target request hit ratio
	SegmentSeconds float64 `json:"segment_seconds"` // media segment duration
	Headroom       float64 `json:"headroom"`        // spare capacity on top of the need (0.25 = 25% more)

	// Edges is a fleet to check (0: none): what bitrate per student it supports.
	Edges int `json:"edges,omitempty"`

	UploadHoursPerDay float64 `json:"upload_hours_per_day"` // hours of lectures published per day
	RetentionDays     float64 `json:"retention_days"`       // how long lectures are kept
	SourceRate        float64 `json:"source_rate_bps"`      // bit rate of the kept source uploads

	UploadRate     float64 `json:"upload_rate"`     // hours of video uploaded per hour at the peak
	TranscodeSpeed float64 `json:"transcode_speed"` // hours of video one worker transcodes per hour
}

// Line is one step of the arithmetic.
type Line struct {
	Name    string `json:"name"`
	Formula string `json:"formula"` // with the numbers filled in; "" for an input echoed
	Value   string `json:"value"`
}

// Result is a plan. Rates are in bits per second, sizes in bytes, counts per second where named so.
type Result struct {
	Inputs Inputs `json:"inputs"`

	BitratePerStudent float64 `json:"bitrate_per_student_bps"`
	TotalEgress       float64 `json:"total_egress_bps"`
	StudentsPerRegion float64 `json:"students_per_region"`
	RegionEgress      float64 `json:"region_egress_bps"`
	EdgeEgress        float64 `json:"edge_egress_bps"` // one edge's usable rate

	RequestsPerStudent float64 `json:"requests_per_student_ps"`
	SegmentBytes       float64 `json:"segment_bytes"` // average bytes per request
	RegionRequests     float64 `json:"region_requests_ps"`
	EdgeRequests       float64 `json:"edge_requests_ps"` // one edge's capacity

	EdgesNIC       float64 `json:"edges_nic_bound"` // per region, before headroom
	EdgesCPU       float64 `json:"edges_cpu_bound"` // per region, before headroom
	Bound          string  `json:"bound"`           // "nic" or "cpu"
	EdgesPerRegion int     `json:"edges_per_region"`
	TotalEdges     int     `json:"edges"`

	OriginEgress   float64 `json:"origin_egress_bps"`
	OriginRequests float64 `json:"origin_requests_ps"`

	StoredRate    float64 `json:"stored_rate_bps"` // every rung, the audio once, the source
	StoragePerDay float64 `json:"storage_per_day_bytes"`
	Storage       float64 `json:"storage_bytes"`

	Workers int `json:"transcode_workers"`

	Fleet *Fleet `json:"fleet,omitempty"`

	Lines []Line `json:"lines"`
}

// Fleet is what a given number of edges supports.
type Fleet struct {
	Edges             int     `json:"edges"`
	Egress            float64 `json:"egress_bps"` // usable, headroom kept
	BitratePerStudent float64 `json:"bitrate_per_student_bps"`
	Requests          float64 `json:"requests_ps"` // capacity, headroom kept
	RequestsEnough    bool    `json:"requests_enough"`
}

// Validate checks in against what the arithmetic needs; each error names the flag to change.
func (in Inputs) Validate() error {
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(in.Students > 0, "--students %d: give the number of students watching at once (at least 1)", in.Students)
	check(in.Regions > 0, "--regions %d: give at least 1 region", in.Regions)
	check(len(in.Rungs) > 0, "no ladder: give --ladder NAME:RATE:SHARE,... or --master FILE with --mix NAME:SHARE,...")
	if len(in.Rungs) > 0 {
		if err := checkRungs(in.Rungs); err != nil {
			errs = append(errs, fmt.Errorf("ladder: %w", err))
		}
	}
	for _, r := range in.Rungs {
		check(r.Rate > 0 && r.Rate > in.AudioRate, "rung %s: rate %s must exceed the --audio rate %s it includes", r.Name, Rate(r.Rate), Rate(in.AudioRate))
	}
	check(in.AudioRate >= 0, "--audio must not be negative")
	check(in.NIC > 0, "--nic: give the edge's link rate, e.g. 10Gb/s")
	check(in.NICUsable > 0 && in.NICUsable <= 1, "--nic-usable %s: give the fraction of the link an edge can fill, e.g. 80%%", Percent(in.NICUsable))
	check(in.EdgeCores > 0, "--edge-cores %d: give at least 1 core", in.EdgeCores)
	check(in.CoreRequests > 0, "--core-rps: give the cache hits per second one core serves (docs/benchmarks.md)")
	check(in.HitRatio >= 0 && in.HitRatio < 1, "--hit-ratio %s: give a fraction below 100%%, e.g. 99%%", Percent(in.HitRatio))
	check(in.SegmentSeconds > 0, "--segment: give the segment duration, e.g. 6s")
	check(in.Headroom >= 0 && in.Headroom <= 10, "--headroom %s: give the spare capacity as a fraction, e.g. 25%%", Percent(in.Headroom))
	check(in.Edges >= 0, "--edges %d: give a fleet size, or 0 for none", in.Edges)
	check(in.UploadHoursPerDay >= 0, "--upload-hours must not be negative")
	check(in.RetentionDays >= 0, "--retention must not be negative")
	check(in.SourceRate >= 0, "--source-rate must not be negative")
	check(in.UploadRate >= 0, "--upload-rate must not be negative")
	check(in.UploadRate == 0 || in.TranscodeSpeed > 0, "--transcode-speed: give how many hours of video one worker transcodes per hour, e.g. 2.68")
	return errors.Join(errs...)
}

// ceilCount rounds a count of machines up, ignoring floating-point noise (4 x 1.25 must stay 5).
func ceilCount(x float64) int { return int(math.Ceil(x - 1e-9)) }

// Compute works out the plan.
func Compute(in Inputs) (Result, error) {
	if err := in.Validate(); err != nil {
		return Result{}, err
	}
	r := Result{Inputs: in}
	add := func(name, formula, value string) { r.Lines = append(r.Lines, Line{name, formula, value}) }
	students := float64(in.Students)
	regions := float64(in.Regions)
	spare := 1 + in.Headroom

	// Egress.
	var terms []string
	for _, g := range in.Rungs {
		r.BitratePerStudent += g.Share * g.Rate
		if g.Share > 0 {
			terms = append(terms, Percent(g.Share)+" × "+Rate(g.Rate))
		}
	}
	add("bitrate per student", "Σ share × rate = "+strings.Join(terms, " + "), Rate(r.BitratePerStudent))
	r.TotalEgress = students * r.BitratePerStudent
	add("total egress", "students × bitrate = "+Count(students)+" × "+Rate(r.BitratePerStudent), Rate(r.TotalEgress))
	r.StudentsPerRegion = students / regions
	r.RegionEgress = r.TotalEgress / regions
	add("egress per region", "total egress / regions = "+Rate(r.TotalEgress)+" / "+Count(regions)+
		" ("+Count(r.StudentsPerRegion)+" students)", Rate(r.RegionEgress))

	// Edges: NIC.
	r.EdgeEgress = in.NIC * in.NICUsable
	add("usable egress per edge", "NIC × usable = "+Rate(in.NIC)+" × "+Percent(in.NICUsable), Rate(r.EdgeEgress))
	r.EdgesNIC = r.RegionEgress / r.EdgeEgress
	add("edges per region, NIC-bound", "egress per region / usable per edge = "+Rate(r.RegionEgress)+" / "+Rate(r.EdgeEgress), Num(r.EdgesNIC))

	// Edges: CPU.
	perSegment := 1.0
	if in.SeparateAudio {
		perSegment = 2
	}
	r.RequestsPerStudent = perSegment / in.SegmentSeconds
	what := "1 segment"
	if in.SeparateAudio {
		what = "2 segments (video + audio)"
	}
	add("requests per student", what+" / "+Num(in.SegmentSeconds)+" s", Num(r.RequestsPerStudent)+"/s")
	r.SegmentBytes = r.BitratePerStudent / 8 / r.RequestsPerStudent
	add("bytes per request", "bitrate / 8 / requests per student = "+Rate(r.BitratePerStudent)+" / 8 / "+Num(r.RequestsPerStudent)+"/s", Bytes(r.SegmentBytes))
	r.RegionRequests = r.StudentsPerRegion * r.RequestsPerStudent
	add("requests per region", "students per region × requests per student = "+Count(r.StudentsPerRegion)+" × "+Num(r.RequestsPerStudent)+"/s", Count(r.RegionRequests)+"/s")
	r.EdgeRequests = float64(in.EdgeCores) * in.CoreRequests
	add("requests per edge", "cores × hits per core = "+Count(float64(in.EdgeCores))+" × "+Count(in.CoreRequests)+"/s", Count(r.EdgeRequests)+"/s")
	r.EdgesCPU = r.RegionRequests / r.EdgeRequests
	add("edges per region, CPU-bound", "requests per region / requests per edge = "+Count(r.RegionRequests)+"/s / "+Count(r.EdgeRequests)+"/s", Num(r.EdgesCPU))

	need := r.EdgesNIC
	r.Bound = "nic"
	if r.EdgesCPU > need {
		need, r.Bound = r.EdgesCPU, "cpu"
	}
	r.EdgesPerRegion = ceilCount(need * spare)
	add("edges per region", "⌈max(NIC "+Num(r.EdgesNIC)+", CPU "+Num(r.EdgesCPU)+") × (1 + headroom "+Percent(in.Headroom)+")⌉, "+strings.ToUpper(r.Bound)+"-bound", Count(float64(r.EdgesPerRegion)))
	r.TotalEdges = r.EdgesPerRegion * in.Regions
	add("edges", "edges per region × regions = "+Count(float64(r.EdgesPerRegion))+" × "+Count(regions), Count(float64(r.TotalEdges)))

	// Origin: with peer groups each region misses an object once, so the region's hit ratio applies.
	miss := 1 - in.HitRatio
	r.OriginEgress = regions * r.RegionEgress * miss
	add("origin egress", "regions × egress per region × (1 − hit ratio) = "+Count(regions)+" × "+Rate(r.RegionEgress)+" × "+Percent(miss), Rate(r.OriginEgress))
	r.OriginRequests = regions * r.RegionRequests * miss
	add("origin requests", "regions × requests per region × (1 − hit ratio) = "+Count(regions)+" × "+Count(r.RegionRequests)+"/s × "+Percent(miss), Count(r.OriginRequests)+"/s")

	if in.Edges > 0 {
		f := &Fleet{Edges: in.Edges}
		e := float64(in.Edges)
		f.Egress = e * r.EdgeEgress / spare
		add("fleet egress", "edges × usable per edge / (1 + headroom) = "+Count(e)+" × "+Rate(r.EdgeEgress)+" / "+Num(spare), Rate(f.Egress))
		f.BitratePerStudent = f.Egress / students
		add("fleet bitrate per student", "fleet egress / students = "+Rate(f.Egress)+" / "+Count(students), Rate(f.BitratePerStudent))
		f.Requests = e * r.EdgeRequests / spare
		f.RequestsEnough = f.Requests >= students*r.RequestsPerStudent
		verdict := "enough"
		if !f.RequestsEnough {
			verdict = "NOT enough for " + Count(students*r.RequestsPerStudent) + "/s"
		}
		add("fleet requests", "edges × requests per edge / (1 + headroom) = "+Count(e)+" × "+Count(r.EdgeRequests)+"/s / "+Num(spare), Count(f.Requests)+"/s, "+verdict)
		spareEdges := in.Edges - r.TotalEdges
		verdict = Count(float64(spareEdges)) + " spare"
		if spareEdges < 0 {
			verdict = Count(float64(-spareEdges)) + " short"
		}
		add("fleet against the plan", "fleet − edges = "+Count(e)+" − "+Count(float64(r.TotalEdges)), verdict)
		r.Fleet = f
	}

	// Storage: every rung is kept, a shared audio rendition once, and the source for re-transcoding.
	var rates []string
	for _, g := range in.Rungs {
		r.StoredRate += g.Rate
		rates = append(rates, Rate(g.Rate))
	}
	formula := strings.Join(rates, " + ")
	if in.AudioRate > 0 && len(in.Rungs) > 1 {
		r.StoredRate -= float64(len(in.Rungs)-1) * in.AudioRate
		formula = "(" + formula + ") − " + Count(float64(len(in.Rungs)-1)) + " × audio " + Rate(in.AudioRate)
	}
	if in.SourceRate > 0 {
		r.StoredRate += in.SourceRate
		formula += " + source " + Rate(in.SourceRate)
	}
	add("stored per lecture hour", "("+formula+") × 3600 s / 8", Bytes(r.StoredRate*3600/8))
	if in.UploadHoursPerDay > 0 {
		r.StoragePerDay = r.StoredRate * 3600 / 8 * in.UploadHoursPerDay
		add("storage per day", "stored per hour × hours per day = "+Bytes(r.StoredRate*3600/8)+" × "+Count(in.UploadHoursPerDay), Bytes(r.StoragePerDay))
		r.Storage = r.StoragePerDay * in.RetentionDays
		add("storage", "per day × retention = "+Bytes(r.StoragePerDay)+" × "+Count(in.RetentionDays)+" days", Bytes(r.Storage))
	}

	if in.UploadRate > 0 {
		r.Workers = ceilCount(in.UploadRate / in.TranscodeSpeed * spare)
		add("transcode workers", "⌈upload rate / speed × (1 + headroom)⌉ = ⌈"+Num(in.UploadRate)+" h/h / "+Num(in.TranscodeSpeed)+" × "+Num(spare)+"⌉", Count(float64(r.Workers)))
	}
	return r, nil
}
