// Package catalog is lectern's durable state: teachers, courses and lectures, and the queue of transcode
// jobs, kept in ONE database so that a lecture's status change and the job that acts on it commit together.
//
// # Backends
//
// Open picks the database from a URL. SQLite (pure Go, modernc.org/sqlite) is the embedded default for a
// single machine; PostgreSQL (pgx) is for running several ingest and worker processes. The same SQL runs on
// both: TEXT ids, BIGINT unix-millisecond timestamps, JSON kept in TEXT, DOUBLE PRECISION numbers, and $N
// placeholders (modernc binds $N positionally, so nothing is rewritten). The package's conformance suite
// (catalogtest) runs unchanged against both.
//
// SQLite runs with WAL, a busy timeout, BEGIN IMMEDIATE transactions and ONE open connection: River issues
// many concurrent statements, which SQLite would otherwise answer with SQLITE_BUSY. The price is that code
// holding a transaction must never query the pool outside it; every function here keeps to that.
//
// # Schema and migrations
//
// Open applies River's migrations (rivermigrate, for the chosen driver) and then the catalog's own: a
// versioned, append-only list recorded in lectern_migrations and applied in order in one transaction.
// Opening an up-to-date database changes nothing; on PostgreSQL an advisory lock serialises processes
// starting together. A database migrated by a newer lectern is refused.
//
// # Lecture lifecycle
//
//	uploaded --EnqueueTranscode--> queued --MarkTranscoding--> transcoding --PublishVersion--> ready
//	                                  \______________________________________FailLecture--> failed
//
// A ready or failed lecture goes back to queued when a replacement source is enqueued. Versions only
// grow: the job for PendingVersion writes hls/{lecture}/v{n}/ and PublishVersion flips Version to it last,
// so players never see a half-written version, and every transition is guarded by the version it is for,
// so a job overtaken by a newer upload gets IsConflict instead of publishing stale output.
//
// # Transcode queue
//
// Jobs are River jobs (TranscodeArgs, queue "transcode") in the same database. EnqueueTranscode inserts
// the job inside the transaction that marks the lecture queued. Processes that work jobs pass
// Options.Workers and call Start; the ingest role leaves Workers nil and only inserts. Stop drains
// gracefully, then cancels what is still running so River retries it rather than waiting for the stuck-job
// rescuer (Options.RescueStuckJobsAfter) that covers crashed workers.
//
// # Events
//
// A lecture's end states are reported to the deployment's webhook (package webhook): lecture.ready from
// PublishVersion, lecture.failed from FailLecture and RejectUpload. With Options.Events each of them
// inserts an EventArgs job (queue "webhooks") in the transaction of the change it reports, so an event
// exists if and only if its change committed, and delivery (slow, retried for hours) never runs while a
// request or a transcode waits for it.
//
// # Worker lease
//
// River's rescuer cannot tell a killed worker from a slow one (a six-hour lecture encodes for hours).
// So each attempt takes a lease on the version in MarkTranscoding, renews it with SetProgress (the
// heartbeat) and needs it to publish. A rescued job whose first attempt is alive finds the lease fresh
// (IsBusy) and waits; one whose worker died takes the lease over once the heartbeat is older than the
// lease TTL. RescueStuckJobsAfter can therefore be minutes, and a killed worker's lecture resumes soon.
// River's rescuer also skips a running job until its worker's own Timeout has passed, so a worker that
// relies on the lease returns -1 there and bounds each attempt itself (transcode.Worker does).
package catalog
