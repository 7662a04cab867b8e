package configcompat

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"time"
)

// errTimedOut: the program ran past its time.
var errTimedOut = errors.New("timed out")

// runProgram runs bin with args in dir, bounded by timeout, and returns
// what it wrote and its exit code. err is errTimedOut, or why it could not
// run; a non-zero exit is not an error.
func runProgram(dir string, timeout time.Duration, bin string, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		err = errTimedOut
	case runErr == nil:
	case errors.As(runErr, &ee):
		code = ee.ExitCode()
	default:
		err = runErr
	}
	return out.String(), errOut.String(), code, err
}
