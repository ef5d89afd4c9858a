package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

const (
	defaultS3Endpoint    = "s3.amazonaws.com"
	defaultS3OpenTimeout = 10 * time.Second
	// minio-go sizes the parts of an unknown-length upload for a 5 TiB object (about 537 MiB each, all
	// buffered in memory). 16 MiB parts still allow 160 GB objects within S3's 10,000-part limit.
	unknownSizePartSize = 16 << 20
)

// s3Params are the query parameters an s3:// URL accepts.
const s3Params = "endpoint region secure create timeout attempts access_key secret_key session_token"

// s3Config is a parsed s3:// URL.
type s3Config struct {
	bucket   string
	endpoint string // host[:port]
	region   string // empty: minio-go asks the server
	secure   bool
	create   bool
	timeout  time.Duration // bound on the start-up bucket check
	attempts int           // tries per request, counting the first; 0: the client's default (10)

	accessKey, secretKey, sessionToken string
	credSource                         string // for error messages: where the credentials came from
}

// parseS3URL reads s3://bucket?endpoint=...; getenv supplies AWS_* credentials when the URL has none.
func parseS3URL(u *url.URL, getenv func(string) string) (s3Config, error) {
	bad := func(format string, args ...any) (s3Config, error) {
		return s3Config{}, fmt.Errorf("objstore: s3 URL: "+format+"; "+urlHelp, args...)
	}
	cfg := s3Config{
		bucket:   u.Host,
		endpoint: defaultS3Endpoint,
		secure:   true,
		timeout:  defaultS3OpenTimeout,
	}
	if u.User != nil {
		return bad("credentials go in access_key/secret_key query parameters, not before the bucket")
	}
	if cfg.bucket == "" {
		return bad("missing bucket name (s3://BUCKET?...)")
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.bucket); err != nil {
		return bad("bucket %q: %v", cfg.bucket, err)
	}
	if u.Path != "" && u.Path != "/" {
		return bad("no path allowed after the bucket (got %q); keys are given to each call", u.Path)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("malformed query string") // the parse error would quote it, secrets and all
	}
	for name := range q {
		if !slices.Contains(strings.Fields(s3Params), name) {
			return bad("unknown parameter %q (known: %s)", name, strings.ReplaceAll(s3Params, " ", ", "))
		}
	}
	if v := q.Get("endpoint"); v != "" {
		if strings.Contains(v, "/") {
			return bad("endpoint %q must be host[:port] without scheme or path (use secure=false for http)", v)
		}
		cfg.endpoint = v
	}
	cfg.region = q.Get("region")
	if v := q.Get("secure"); v != "" {
		if cfg.secure, err = strconv.ParseBool(v); err != nil {
			return bad("secure=%q: want true or false", v)
		}
	}
	if v := q.Get("create"); v != "" {
		if cfg.create, err = strconv.ParseBool(v); err != nil {
			return bad("create=%q: want true or false", v)
		}
	}
	if v := q.Get("timeout"); v != "" {
		if cfg.timeout, err = time.ParseDuration(v); err != nil || cfg.timeout <= 0 {
			return bad("timeout=%q: want a positive duration such as 10s", v)
		}
	}
	if v := q.Get("attempts"); v != "" {
		if cfg.attempts, err = strconv.Atoi(v); err != nil || cfg.attempts < 1 || cfg.attempts > 20 {
			return bad("attempts=%q: want tries per request from 1 (no retry) to 20", v)
		}
	}
	cfg.accessKey, cfg.secretKey, cfg.sessionToken = q.Get("access_key"), q.Get("secret_key"), q.Get("session_token")
	cfg.credSource = "URL access_key/secret_key"
	if cfg.accessKey == "" && cfg.secretKey == "" {
		cfg.accessKey, cfg.secretKey = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
		cfg.sessionToken = getenv("AWS_SESSION_TOKEN")
		cfg.credSource = "environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
		if cfg.accessKey == "" && cfg.secretKey == "" {
			cfg.credSource = "IAM (none in URL or environment)"
		}
	}
	if (cfg.accessKey == "") != (cfg.secretKey == "") {
		return bad("%s: access key and secret key must be given together", cfg.credSource)
	}
	return cfg, nil
}

// String is the URL without credentials.
func (c s3Config) String() string {
	q := url.Values{}
	q.Set("endpoint", c.endpoint)
	if c.region != "" {
		q.Set("region", c.region)
	}
	q.Set("secure", strconv.FormatBool(c.secure))
	return "s3://" + c.bucket + "?" + q.Encode()
}

type s3Driver struct {
	cfg    s3Config
	client *minio.Client
	// core.GetObject makes the request at once and returns the response headers: minio.Client's GetObject
	// defers the request to the first Read and hides Content-Range, which holds the full size.
	core      minio.Core
	transport *http.Transport
}

func openS3(ctx context.Context, cfg s3Config) (*s3Driver, error) {
	tr, err := minio.DefaultTransport(cfg.secure)
	if err != nil {
		return nil, fmt.Errorf("objstore: %s: %w", cfg, err)
	}
	creds := credentials.NewIAM("")
	if cfg.accessKey != "" {
		creds = credentials.NewStaticV4(cfg.accessKey, cfg.secretKey, cfg.sessionToken)
	}
	client, err := minio.New(cfg.endpoint, &minio.Options{
		Creds:     creds,
		Secure:    cfg.secure,
		Region:    cfg.region,
		Transport: tr,
		// A request-serving role (the origin) wants a failing store to fail fast rather than retry a
		// refused connection for seconds; batch roles keep the client's persistent default.
		MaxRetries: cfg.attempts,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: %s: %w", cfg, err)
	}
	d := &s3Driver{cfg: cfg, client: client, core: minio.Core{Client: client}, transport: tr}
	cctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := d.ensureBucket(cctx); err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	return d, nil
}

// ensureBucket fails with a message an operator can act on: which endpoint, which bucket, what to change.
func (d *s3Driver) ensureBucket(ctx context.Context) error {
	ok, err := d.client.BucketExists(ctx, d.cfg.bucket)
	if err != nil {
		return d.reachErr(ctx, err)
	}
	if ok {
		return nil
	}
	if !d.cfg.create {
		return fmt.Errorf("objstore: bucket %q does not exist at endpoint %s (add create=true to the URL to create it)",
			d.cfg.bucket, d.cfg.endpoint)
	}
	err = d.client.MakeBucket(ctx, d.cfg.bucket, minio.MakeBucketOptions{Region: d.cfg.region})
	if err != nil && errCode(err) != minio.BucketAlreadyOwnedByYou { // another instance won the race
		return fmt.Errorf("objstore: cannot create bucket %q at endpoint %s: %w", d.cfg.bucket, d.cfg.endpoint, err)
	}
	return nil
}

func (d *s3Driver) reachErr(ctx context.Context, err error) error {
	var er minio.ErrorResponse
	errors.As(err, &er)
	switch {
	case er.StatusCode == http.StatusForbidden || er.Code == "InvalidAccessKeyId" ||
		er.Code == "SignatureDoesNotMatch" || er.Code == "ExpiredToken" || er.Code == "InvalidToken":
		return fmt.Errorf("objstore: S3 endpoint %s refused access to bucket %q with credentials from %s: %w",
			d.cfg.endpoint, d.cfg.bucket, d.cfg.credSource, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("objstore: cannot reach S3 endpoint %s within %s (check endpoint= and secure=): %w",
			d.cfg.endpoint, d.cfg.timeout, err)
	}
	return fmt.Errorf("objstore: cannot reach S3 endpoint %s (check endpoint= and secure=): %w", d.cfg.endpoint, err)
}

func (d *s3Driver) String() string { return d.cfg.String() }

func (d *s3Driver) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error {
	po := minio.PutObjectOptions{ContentType: opts.ContentType, CacheControl: opts.CacheControl}
	if size < 0 {
		po.PartSize = unknownSizePartSize
	}
	_, err := d.client.PutObject(ctx, d.cfg.bucket, key, r, size, po)
	return s3Err(err)
}

func (d *s3Driver) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Attrs, error) {
	if length == 0 {
		// An HTTP range cannot ask for zero bytes.
		a, err := d.Head(ctx, key)
		if err != nil {
			return nil, Attrs{}, err
		}
		if offset > a.Size {
			return nil, Attrs{}, fmt.Errorf("offset %d beyond size %d: %w", offset, a.Size, ErrInvalidRange)
		}
		return io.NopCloser(strings.NewReader("")), a, nil
	}
	if length > math.MaxInt64-offset {
		length = -1 // the end would overflow; no object is that long anyway
	}
	var opts minio.GetObjectOptions
	ranged := offset > 0 || length > 0
	if ranged {
		end := int64(0) // with offset > 0: "bytes=offset-", to the end
		if length > 0 {
			end = offset + length - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return nil, Attrs{}, fmt.Errorf("%w: %v", ErrInvalidRange, err)
		}
	}
	body, info, hdr, err := d.core.GetObject(ctx, d.cfg.bucket, key, opts)
	if err != nil {
		if errCode(err) != minio.InvalidRange {
			return nil, Attrs{}, s3Err(err)
		}
		// S3 answers 416 for offset == size too, which this package defines as an empty read.
		a, herr := d.Head(ctx, key)
		if herr != nil {
			return nil, Attrs{}, herr
		}
		if offset != a.Size {
			return nil, Attrs{}, fmt.Errorf("offset %d beyond size %d: %w", offset, a.Size, ErrInvalidRange)
		}
		return io.NopCloser(strings.NewReader("")), a, nil
	}
	a := attrsFromInfo(key, info)
	if !ranged {
		return body, a, nil
	}
	if total, ok := contentRangeTotal(hdr.Get("Content-Range")); ok {
		a.Size = total
		return body, a, nil
	}
	// A server may ignore Range (RFC 9110) and send the whole object; cut the range out here.
	if _, err := io.CopyN(io.Discard, body, offset); err != nil {
		body.Close()
		return nil, Attrs{}, err
	}
	if length < 0 {
		return body, a, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(body, length), body}, a, nil
}

func (d *s3Driver) Head(ctx context.Context, key string) (Attrs, error) {
	info, err := d.client.StatObject(ctx, d.cfg.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Attrs{}, s3Err(err)
	}
	return attrsFromInfo(key, info), nil
}

func (d *s3Driver) Delete(ctx context.Context, key string) error {
	err := d.client.RemoveObject(ctx, d.cfg.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && errCode(err) == minio.NoSuchKey { // S3 itself says 204; some compatibles say 404
		return nil
	}
	return s3Err(err)
}

func (d *s3Driver) List(ctx context.Context, prefix string) ([]Attrs, error) {
	out := []Attrs{}
	for obj := range d.client.ListObjectsIter(ctx, d.cfg.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, s3Err(obj.Err)
		}
		out = append(out, Attrs{
			Key:     obj.Key,
			Size:    obj.Size,
			ETag:    strings.Trim(obj.ETag, `"`),
			ModTime: obj.LastModified,
		})
	}
	// S3 already lists in binary key order; some compatible stores do not promise it.
	slices.SortFunc(out, func(x, y Attrs) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

func (d *s3Driver) Ping(ctx context.Context) error {
	ok, err := d.client.BucketExists(ctx, d.cfg.bucket)
	if err != nil {
		return d.reachErr(ctx, err)
	}
	if !ok {
		return fmt.Errorf("bucket %q does not exist at endpoint %s: %w", d.cfg.bucket, d.cfg.endpoint, ErrNotFound)
	}
	return nil
}

func (d *s3Driver) Close() error {
	d.transport.CloseIdleConnections()
	return nil
}

func attrsFromInfo(key string, info minio.ObjectInfo) Attrs {
	return Attrs{
		Key:          key,
		Size:         info.Size,
		ETag:         strings.Trim(info.ETag, `"`),
		ModTime:      info.LastModified,
		ContentType:  info.ContentType,
		CacheControl: info.Metadata.Get("Cache-Control"),
	}
}

// contentRangeTotal reads the full size from "bytes 0-99/1234".
func contentRangeTotal(h string) (int64, bool) {
	i := strings.LastIndexByte(h, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(h[i+1:], 10, 64)
	return n, err == nil && n >= 0
}

// errCode is the S3 error code in err, if any. minio.ToErrorResponse only recognises an unwrapped
// ErrorResponse, so it is looked up with errors.As instead.
func errCode(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

// s3Err maps S3 error codes onto this package's sentinels, keeping the original for the message.
func s3Err(err error) error {
	if err == nil {
		return nil
	}
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return err
	}
	switch {
	case er.Code == minio.NoSuchKey || er.Code == minio.NoSuchBucket || er.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case er.Code == minio.InvalidRange || er.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: %w", ErrInvalidRange, err)
	}
	return err
}
