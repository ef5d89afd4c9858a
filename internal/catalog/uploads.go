package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// UploadState is where a resumable upload is: receiving until its last byte arrives, then exactly one
// of done (handed to the transcoder), rejected (failed validation), expired (abandoned) or cancelled.
type UploadState string

const (
	UploadReceiving UploadState = "receiving"
	UploadDone      UploadState = "done"
	UploadRejected  UploadState = "rejected"
	UploadExpired   UploadState = "expired"
	UploadCancelled UploadState = "cancelled" // terminated by the client, or its lecture deleted
)

// Upload is the catalog's record of one tus upload. The bytes themselves are in the tus store under ID.
type Upload struct {
	ID string // "{LectureID}/{random}": the upload's name, and its source key under sources/
	// TusID is the id the tus store gave it: ID, or for S3 "ID+{multipart upload id}" ("" until known).
	TusID     string
	LectureID string
	TeacherID string
	Size      int64
	Filename  string
	State     UploadState
	Error     string // why it was rejected
	CreatedAt time.Time
	UpdatedAt time.Time // last byte received (or created)
	ExpiresAt time.Time // an upload still receiving after this is abandoned
}

const uploadColumns = `id, tus_id, lecture_id, teacher_id, size, filename, state, error, created_at, updated_at, expires_at`

func scanUpload(r row) (Upload, error) {
	var u Upload
	var state string
	var created, updated, expires int64
	if err := r.Scan(&u.ID, &u.TusID, &u.LectureID, &u.TeacherID, &u.Size, &u.Filename, &state, &u.Error, &created, &updated, &expires); err != nil {
		return Upload{}, err
	}
	u.State = UploadState(state)
	u.CreatedAt, u.UpdatedAt, u.ExpiresAt = fromMillis(created), fromMillis(updated), fromMillis(expires)
	return u, nil
}

// CreateUpload records a new upload, receiving. The lecture must exist and belong to u.TeacherID
// (IsNotFound otherwise, so another teacher's lecture looks missing).
func (c *Catalog) CreateUpload(ctx context.Context, u Upload) (Upload, error) {
	if strings.TrimSpace(u.ID) == "" || u.Size < 0 {
		return Upload{}, fmt.Errorf("%w: upload id %q size %d", ErrInvalid, u.ID, u.Size)
	}
	t := now()
	u.State, u.CreatedAt, u.UpdatedAt = UploadReceiving, t, t
	u.ExpiresAt = u.ExpiresAt.UTC().Truncate(time.Millisecond)
	err := c.b.inTx(ctx, func(q dbtx, _ insertFunc) error {
		var owner string
		if err := q.queryRow(ctx, `SELECT teacher_id FROM lectures WHERE id = $1`, u.LectureID).Scan(&owner); err != nil {
			return fmt.Errorf("lecture %q: %w", u.LectureID, err)
		}
		if owner != u.TeacherID {
			return fmt.Errorf("lecture %q: %w", u.LectureID, ErrNotFound)
		}
		_, err := q.exec(ctx, `INSERT INTO uploads (`+uploadColumns+`) VALUES ($1, '', $2, $3, $4, $5, $6, '', $7, $7, $8)`,
			u.ID, u.LectureID, u.TeacherID, u.Size, u.Filename, string(u.State), millis(t), millis(u.ExpiresAt))
		return err
	})
	if err != nil {
		return Upload{}, fmt.Errorf("catalog: create upload: %w", err)
	}
	return u, nil
}

// GetUpload returns an upload, or an error for which IsNotFound is true.
func (c *Catalog) GetUpload(ctx context.Context, id string) (Upload, error) {
	u, err := scanUpload(c.b.db().queryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1`, id))
	if err != nil {
		return Upload{}, fmt.Errorf("catalog: upload %q: %w", id, err)
	}
	return u, nil
}

// SetUploadTusID records the id the tus store gave an upload.
func (c *Catalog) SetUploadTusID(ctx context.Context, id, tusID string) error {
	n, err := c.b.db().exec(ctx, `UPDATE uploads SET tus_id = $2 WHERE id = $1`, id, tusID)
	if err != nil {
		return fmt.Errorf("catalog: upload %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("catalog: upload %q: %w", id, ErrNotFound)
	}
	return nil
}

// TouchUpload records activity on a receiving upload and moves its expiry to expiresAt.
// IsConflict if it is no longer receiving, IsNotFound if it does not exist.
func (c *Catalog) TouchUpload(ctx context.Context, id string, expiresAt time.Time) error {
	n, err := c.b.db().exec(ctx, `UPDATE uploads SET updated_at = $2, expires_at = $3 WHERE id = $1 AND state = $4`,
		id, millis(now()), millis(expiresAt), string(UploadReceiving))
	if err != nil {
		return fmt.Errorf("catalog: touch upload %q: %w", id, err)
	}
	if n == 0 {
		return c.uploadMiss(ctx, "touch", id)
	}
	return nil
}

// uploadMiss explains why a change to a receiving upload matched no row.
func (c *Catalog) uploadMiss(ctx context.Context, what, id string) error {
	u, err := c.GetUpload(ctx, id)
	if err != nil {
		return fmt.Errorf("catalog: %s upload: %w", what, err)
	}
	return fmt.Errorf("catalog: %s upload %q: it is %s: %w", what, id, u.State, ErrConflict)
}

// ListUploads returns a lecture's uploads that are still receiving, oldest first.
func (c *Catalog) ListUploads(ctx context.Context, lectureID string) ([]Upload, error) {
	return c.queryUploads(ctx, `WHERE lecture_id = $1 AND state = $2 ORDER BY created_at, id`, lectureID, string(UploadReceiving))
}

// ReceivingUploads returns every upload still receiving (at most limit), oldest first: at start-up the
// ingest role looks among them for uploads whose last byte arrived just before a crash.
func (c *Catalog) ReceivingUploads(ctx context.Context, limit int) ([]Upload, error) {
	return c.queryUploads(ctx, `WHERE state = $1 ORDER BY created_at, id LIMIT $2`, string(UploadReceiving), limit)
}

// ExpiredUploads returns up to limit receiving uploads whose expiry is before t.
func (c *Catalog) ExpiredUploads(ctx context.Context, t time.Time, limit int) ([]Upload, error) {
	return c.queryUploads(ctx, `WHERE state = $1 AND expires_at < $2 ORDER BY expires_at LIMIT $3`,
		string(UploadReceiving), millis(t), limit)
}

func (c *Catalog) queryUploads(ctx context.Context, where string, args ...any) ([]Upload, error) {
	rs, err := c.b.db().query(ctx, `SELECT `+uploadColumns+` FROM uploads `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("catalog: list uploads: %w", err)
	}
	defer rs.Close()
	var out []Upload
	for rs.Next() {
		u, err := scanUpload(rs)
		if err != nil {
			return nil, fmt.Errorf("catalog: list uploads: %w", err)
		}
		out = append(out, u)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("catalog: list uploads: %w", err)
	}
	return out, nil
}

// EndUpload moves a receiving upload to state (rejected, expired or cancelled), with a reason. IsConflict if it
// already left receiving: exactly one caller wins, so a crash-recovery pass and a retried final PATCH
// cannot both act on one upload. Use EnqueueTranscode with Source.UploadID for done.
func (c *Catalog) EndUpload(ctx context.Context, id string, state UploadState, reason string) error {
	if state != UploadRejected && state != UploadExpired && state != UploadCancelled {
		return fmt.Errorf("%w: end upload in state %q", ErrInvalid, state)
	}
	n, err := c.b.db().exec(ctx, `UPDATE uploads SET state = $2, error = $3, updated_at = $4 WHERE id = $1 AND state = $5`,
		id, string(state), truncateUTF8(reason, maxReasonLen), millis(now()), string(UploadReceiving))
	if err != nil {
		return fmt.Errorf("catalog: end upload %q: %w", id, err)
	}
	if n == 0 {
		return c.uploadMiss(ctx, "end", id)
	}
	return nil
}

// markUploadDone is EnqueueTranscode's step for Source.UploadID, inside its transaction.
func markUploadDone(ctx context.Context, q dbtx, id, lectureID string) error {
	n, err := q.exec(ctx, `UPDATE uploads SET state = $2, updated_at = $3 WHERE id = $1 AND lecture_id = $4 AND state = $5`,
		id, string(UploadDone), millis(now()), lectureID, string(UploadReceiving))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("upload %q is not receiving for this lecture: %w", id, ErrConflict)
	}
	return nil
}
