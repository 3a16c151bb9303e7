package serve

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Run is the whole main function of an engine binary that needs nothing else:
// it serves os.Args on the process's standard streams, cancels the context on
// SIGINT or SIGTERM (an engine then stops between tokens and reports an error
// event), and exits with Main's code.
func Run(e Engine) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, e, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
