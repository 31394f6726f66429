// Command embed shows Berth as a library: it opens an engine in-process,
// creates a container from the built-in hello image, runs it with this
// program's stdout, and removes it. No berth process is involved.
//
//	go run ./examples/embed --root /tmp/embed/root --runroot /tmp/embed/run
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
)

func main() {
	root := flag.String("root", "/var/lib/berth", "engine state directory")
	runroot := flag.String("runroot", "/run/berth", "engine runtime directory")
	img := flag.String("image", engine.BuiltinHello, "image to run")
	flag.Parse()
	code, err := run(context.Background(), *root, *runroot, *img, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(125)
	}
	os.Exit(code)
}

func run(ctx context.Context, root, runroot, img string, cmd []string) (int, error) {
	e, err := engine.Open(ctx, engine.Options{Root: root, RunRoot: runroot})
	if err != nil {
		return 0, err
	}
	defer e.Close()
	c, err := e.Create(ctx, engine.CreateOptions{
		Image: img, AutoRemove: true, Run: runtime.RunOptions{Cmd: cmd},
		// The hello program needs no network; "bridge" would attach it to
		// the default bridge network as `berth run` does.
		Network: engine.NetworkRequest{NetworkSettings: engine.NetworkSettings{Mode: "none"}},
	})
	if err != nil {
		return 0, err
	}
	p, err := e.Start(ctx, c.ID, runtime.Stdio{Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		return 0, err
	}
	return p.Wait(ctx)
}
