// Command putobject stores one local file in an S3 bucket with minio-go's PutObject, the way `mc cp`
// does: the anchor bench/upload.sh measures Lectern's tus uploads to S3 storage against.
//
//	go run ./bench/putobject -endpoint 127.0.0.1:9000 -access-key K -secret-key S -bucket B -key K FILE
//
// The part size is minio-go's default for a known size (16 MiB for files up to 156 GiB, 4 parts in
// flight), which is also what internal/objstore's s3 driver uses for a Put of known size. -part-size
// overrides it. It prints one line: bytes, seconds and MB/s (10^6 bytes per second), timed from the
// opening of the file until PutObject returned (the multipart upload completed). The bucket is created
// when missing (not timed).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:9000", "S3 endpoint host:port (plain http)")
	accessKey := flag.String("access-key", "", "access key")
	secretKey := flag.String("secret-key", "", "secret key")
	region := flag.String("region", "us-east-1", "region")
	bucket := flag.String("bucket", "", "bucket (created when missing)")
	key := flag.String("key", "", "object key")
	partSize := flag.Uint64("part-size", 0, "multipart part size in bytes (0: minio-go's default)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: putobject -endpoint HOST:PORT -access-key K -secret-key S -bucket B -key KEY FILE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *bucket == "" || *key == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*endpoint, *accessKey, *secretKey, *region, *bucket, *key, flag.Arg(0), *partSize); err != nil {
		fmt.Fprintln(os.Stderr, "putobject:", err)
		os.Exit(1)
	}
}

func run(endpoint, accessKey, secretKey, region, bucket, key, file string, partSize uint64) error {
	ctx := context.Background()
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		return err
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:    false,
		Region:    region,
		Transport: tr,
	})
	if err != nil {
		return err
	}
	exists, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	if !exists {
		if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region}); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucket, err)
		}
	}

	start := time.Now()
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	info, err := client.PutObject(ctx, bucket, key, f, fi.Size(), minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    partSize,
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	secs := time.Since(start).Seconds()
	if info.Size != fi.Size() {
		return fmt.Errorf("put %s: stored %d bytes, the file has %d", key, info.Size, fi.Size())
	}
	fmt.Printf("%d %.3f %.1f\n", info.Size, secs, float64(info.Size)/secs/1e6)
	return nil
}
