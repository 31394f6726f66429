package helper

import (
	"os"

	"github.com/berthproject/berth/privsep"
	"golang.org/x/sys/unix"
)

// input is what descriptor a request frame must carry.
type input int

const (
	noInput    input = iota
	tarInput         // container.copy-to, image.load, image.import: the tar stream
	stdinInput       // exec.start with stdin: the process's stdin
)

// inputOf is the descriptor req takes.
func inputOf(req Request) input {
	switch a := req.Args.(type) {
	case *privsep.CopyToArgs, *privsep.LoadArgs, *privsep.ImportArgs:
		return tarInput
	case *privsep.ExecStartArgs:
		if a.Stdin {
			return stdinInput
		}
	}
	return noInput
}

func (in input) String() string {
	if in == tarInput {
		return "a pipe or unix stream socket carrying the tar stream"
	}
	return "the read end of a pipe"
}

// accepts reports whether fd is of the kind in takes: a pipe or an
// AF_UNIX SOCK_STREAM socket for a tar stream; a pipe opened for reading
// only for stdin.
func (in input) accepts(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	switch typ := st.Mode & unix.S_IFMT; in {
	case tarInput:
		return typ == unix.S_IFIFO || typ == unix.S_IFSOCK && privsep.IsUnixStream(fd)
	case stdinInput:
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		return err == nil && typ == unix.S_IFIFO && fl&unix.O_ACCMODE == unix.O_RDONLY
	}
	return false
}

// TakeInput checks the descriptor a request frame carried (fd, -1 for
// none) against what req takes, as SPEC.md states: container.copy-to,
// image.load and image.import require a pipe or a unix stream socket
// (the tar stream), exec.start
// with stdin the read end of a pipe, and every other request none. It
// returns the descriptor as a file (nil for none). A refusal is
// errdefs.ErrInvalidArgument, and fd is closed then.
func TakeInput(req Request, fd int) (*os.File, error) {
	want := inputOf(req)
	var err error
	switch {
	case want == noInput && fd < 0:
		return nil, nil
	case want == noInput:
		err = bad("%s: request carried a descriptor it does not take", req.Op)
	case fd < 0:
		err = bad("%s: the request must carry %s", req.Op, want)
	case !want.accepts(fd):
		err = bad("%s: the descriptor is not %s", req.Op, want)
	default:
		return os.NewFile(uintptr(fd), string(req.Op)+"-input"), nil
	}
	privsep.CloseFDs([]int{fd})
	return nil, err
}
