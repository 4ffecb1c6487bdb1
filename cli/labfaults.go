package cli

import (
	"fmt"
	"io"

	"github.com/nsnet/nsnet/lab/faults"
)

// faultSummary counts what up did to the file's faults: "faults on 2 ends
// made, 1 cleared".
func faultSummary(fr *faults.FileResult) string {
	s := fmt.Sprintf("faults on %d %s made", fr.Made, plural(fr.Made, "end", "ends"))
	if fr.Cleared > 0 {
		s += fmt.Sprintf(", %d cleared", fr.Cleared)
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeFilePlan prints, after the lab's own plan, what up would do to the
// file's faults, as tc, nft and ip lines.
func writeFilePlan(w io.Writer, fr *faults.FileResult) error {
	if fr.Made+fr.Cleared == 0 {
		return nil
	}
	head := fmt.Sprintf("# faults: %d %s to impair", fr.Made, plural(fr.Made, "end", "ends"))
	if fr.Cleared > 0 {
		head += fmt.Sprintf(", %d to clear", fr.Cleared)
	}
	if _, err := fmt.Fprintln(w, head); err != nil {
		return err
	}
	for _, n := range fr.Notes {
		if _, err := fmt.Fprintf(w, "# note: %s\n", n); err != nil {
			return err
		}
	}
	for _, l := range fr.Lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}
