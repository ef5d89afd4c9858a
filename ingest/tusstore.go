package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/s3store"

	"github.com/lectern/lectern/internal/objstore"
)

// sourcePrefix is where sources live in the bucket: sources/{lecture}/{upload}. A tus upload id is
// "{lecture}/{random}" (s3store appends "+{multipart id}"), so on S3 the upload's object already is
// the source and nothing is copied when it completes.
const sourcePrefix = "sources/"

// uploadStore is where tus uploads are written, and what ingest needs to do with a finished one.
type uploadStore interface {
	compose(c *tusd.StoreComposer)
	// probeSource is a path or URL ffprobe can read the finished upload from.
	probeSource(ctx context.Context, id string) (string, error)
	// keep makes the finished upload the source object and returns its key.
	keep(ctx context.Context, id string) (string, error)
	// discard deletes an upload's bytes, finished or not. A missing upload is not an error.
	discard(ctx context.Context, id string) error
	// info reads the upload's tus state.
	info(ctx context.Context, id string) (tusd.FileInfo, error)
	// removeLecture deletes every upload of a lecture (its uploads' ids all begin with "{lecture}/").
	removeLecture(ctx context.Context, lectureID string) error
}

// objectID is the s3store object part of a tus id ("{lecture}/{random}+{multipart}" -> "{lecture}/{random}");
// filestore ids have no "+".
func objectID(id string) string {
	o, _, _ := strings.Cut(id, "+")
	return o
}

// lectureOfUpload is the lecture an upload id belongs to.
func lectureOfUpload(id string) string {
	l, _, _ := strings.Cut(id, "/")
	return l
}

// --- file storage: tusd's filestore in the bucket's reserved area, then a rename into place ----------

type fileUploads struct {
	dir    string
	store  filestore.FileStore
	bucket *objstore.Bucket
}

func newFileUploads(dir string, bucket *objstore.Bucket) (*fileUploads, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ingest: upload directory: %w", err)
	}
	return &fileUploads{dir: dir, store: filestore.New(dir), bucket: bucket}, nil
}

func (f *fileUploads) compose(c *tusd.StoreComposer) { writebackStore{f.store}.useIn(c) }

func (f *fileUploads) path(id string) string { return filepath.Join(f.dir, filepath.FromSlash(id)) }

func (f *fileUploads) probeSource(_ context.Context, id string) (string, error) {
	return f.path(id), nil
}

func (f *fileUploads) keep(ctx context.Context, id string) (string, error) {
	key := sourcePrefix + id
	if err := f.bucket.Adopt(ctx, key, f.path(id), objstore.PutOptions{}); err != nil {
		return "", err
	}
	_ = os.Remove(f.path(id) + ".info")
	return key, nil
}

func (f *fileUploads) discard(ctx context.Context, id string) error {
	for _, p := range []string{f.path(id), f.path(id) + ".info", f.path(id) + ".lock", f.path(id) + ".stop"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ingest: discard upload %s: %w", id, err)
		}
	}
	return nil
}

func (f *fileUploads) info(ctx context.Context, id string) (tusd.FileInfo, error) {
	up, err := f.store.GetUpload(ctx, id)
	if err != nil {
		return tusd.FileInfo{}, err
	}
	return up.GetInfo(ctx)
}

func (f *fileUploads) removeLecture(_ context.Context, lectureID string) error {
	if lectureID == "" || strings.ContainsAny(lectureID, `/\.`) {
		return fmt.Errorf("ingest: bad lecture id %q", lectureID)
	}
	return os.RemoveAll(filepath.Join(f.dir, lectureID))
}

// --- S3: tusd's s3store writes straight to the bucket -------------------------------------------------

type s3Uploads struct {
	store   s3store.S3Store
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	objects *objstore.Bucket
}

// newS3Uploads builds an aws-sdk-go-v2 client for the bucket's endpoint. Checksums are computed and
// validated only when an operation requires them: MinIO and other non-AWS stores reject or mangle the
// SDK's default trailing checksums on UploadPart.
func newS3Uploads(cfg objstore.S3Settings, objects *objstore.Bucket, tmpDir string) *s3Uploads {
	scheme := "https://"
	if !cfg.Secure {
		scheme = "http://"
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	awsCfg := aws.Config{
		Region:                     region,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           3,
	}
	if cfg.AccessKey != "" {
		awsCfg.Credentials = credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(scheme + cfg.Endpoint)
		o.UsePathStyle = true
	})
	store := s3store.New(cfg.Bucket, client)
	store.ObjectPrefix = sourcePrefix
	store.TemporaryDirectory = tmpDir
	// Parts go out on a presigned URL instead of a SigV4 signature over a SHA-256 of the body, which
	// aws-sdk-go-v2 computes on http endpoints: that hash was a fifth of ingest's CPU per uploaded byte
	// (bench/upload.sh; MinIO 0.70x -> 0.84x of a direct PutObject). Over https the SDK leaves the
	// payload unsigned anyway; over plain http a part's bytes are then protected by TCP's checksum only,
	// as with any unsigned payload. tusd marks the option experimental: recheck on upgrades.
	store.DisableContentHashes = true
	return &s3Uploads{store: store, client: client, presign: s3.NewPresignClient(client), bucket: cfg.Bucket, objects: objects}
}

func (s *s3Uploads) compose(c *tusd.StoreComposer) { s.store.UseIn(c) }

func (s *s3Uploads) probeSource(ctx context.Context, id string) (string, error) {
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(sourcePrefix + objectID(id)),
	}, s3.WithPresignExpires(15*time.Minute))
	if err != nil {
		return "", fmt.Errorf("ingest: presign %s: %w", id, err)
	}
	if _, err := url.Parse(req.URL); err != nil {
		return "", err
	}
	return req.URL, nil
}

func (s *s3Uploads) keep(ctx context.Context, id string) (string, error) {
	key := sourcePrefix + objectID(id)
	// The object is complete; tusd's bookkeeping objects are not needed any more.
	for _, k := range []string{key + ".info", key + ".part"} {
		if err := s.objects.Delete(ctx, k); err != nil {
			return "", err
		}
	}
	return key, nil
}

func (s *s3Uploads) discard(ctx context.Context, id string) error {
	up, err := s.store.GetUpload(ctx, id)
	if err == nil {
		err = s.store.AsTerminatableUpload(up).Terminate(ctx)
	}
	if err != nil && !errors.Is(err, tusd.ErrNotFound) {
		return fmt.Errorf("ingest: discard upload %s: %w", id, err)
	}
	// Terminate leaves nothing for a receiving upload; a finished one may have left its object.
	return s.objects.DeletePrefix(ctx, sourcePrefix+objectID(id))
}

func (s *s3Uploads) info(ctx context.Context, id string) (tusd.FileInfo, error) {
	up, err := s.store.GetUpload(ctx, id)
	if err != nil {
		return tusd.FileInfo{}, err
	}
	return up.GetInfo(ctx)
}

// removeLecture: receiving uploads are terminated one by one by the caller (their multipart uploads
// are not objects); what is left are objects under sources/{lecture}/, removed with the lecture.
func (s *s3Uploads) removeLecture(context.Context, string) error { return nil }
