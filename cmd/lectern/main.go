// Command lectern is Lectern's one binary: every role is a subcommand.
//
//	lectern serve            all roles in one process on an embedded default (SQLite, local disk, in-process worker)
//	lectern ingest           lecture API, uploads and the teacher page
//	lectern worker           transcode jobs
//	lectern origin           HLS objects from object storage
//	lectern edge             caching proxy in front of an origin (or another edge)
//	lectern router           sends each student to a healthy edge of their region (302 to the edge)
//	lectern teacher add NAME create a teacher and print their API token; --school SCHOOL names the school whose
//	                         region (in the region map) serves their students (teacher school ID SCHOOL changes it;
//	                         teacher revoke ID: the token stops working)
//	lectern upload FILE      resumable upload of a lecture to any Lectern server (--wait follows the transcode)
//	lectern transcode IN OUT the worker's pipeline on a local file; prints the ladder it chose
//	lectern retranscode ID   queue v{n+1} of a lecture from its stored source (new ladder or profile)
//	lectern loadtest         virtual students that play like hls.js against a deployment on this machine (loopback
//	                         only); reports startup percentiles, rebuffers, errors by status and origin offload
//	lectern plan             capacity planning: edges per region, origin egress, storage and transcode workers
//	                         from students, regions and the ladder (--ladder, or --master FILE|URL with --mix);
//	                         prints each figure with its arithmetic (--json for tools)
//	lectern simulate         discrete-event model of the 09:00 class start (3 M students, 186 edges): origin
//	                         requests per second with and without collapsing, peer groups and prefetch, and
//	                         with an edge or a region lost (--json for the series)
//
// Every flag can also be set by an environment variable: --db is LECTERN_DB, --origin-listen is
// LECTERN_ORIGIN_LISTEN. `lectern ROLE -h` lists a role's flags with their defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "all roles in one process (embedded default: SQLite, local disk, in-process worker)", runServe},
		{"ingest", "lecture API, uploads and the teacher page", runIngest},
		{"worker", "transcode jobs from the queue", runWorker},
		{"origin", "serve HLS objects from object storage", runOrigin},
		{"edge", "caching proxy in front of an origin", runEdge},
		{"router", "send each student to a healthy edge of their region (302)", runRouter},
		{"teacher", "manage teachers: teacher add NAME [--school SCHOOL], teacher school ID SCHOOL, teacher revoke ID", runTeacher},
		{"transcode", "one-shot: transcode INPUT into an HLS tree in OUTDIR and print the ladder", runTranscode},
		{"retranscode", "queue a new version of lectures from their stored sources (new ladder or profile)", runRetranscode},
		{"loadtest", "virtual students that play like hls.js against this machine's router or edge; startup, rebuffers, offload", runLoadtest},
		{"plan", "capacity planning: edges, origin egress, storage and workers, with the arithmetic shown", runPlan},
		{"simulate", "discrete-event model of the 09:00 flash crowd: origin requests/s with and without each edge mechanism", runSimulate},
		{"upload", "send a lecture video to a server (resumable; --wait follows the transcode)", runUpload},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "lectern", version)
			return nil
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: lectern COMMAND [flags]\n\ncommands:")
		for _, c := range commands() {
			fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
		}
		fmt.Fprintln(w, "\n`lectern COMMAND -h` lists a command's flags; each flag is also read from LECTERN_<FLAG> in the environment.")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			// One line a person can act on: what failed and what to do about it.
			fmt.Fprintf(stderr, "lectern %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "lectern: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage marks a command-line mistake whose message was already printed with the usage text.
var errUsage = errors.New("usage")
