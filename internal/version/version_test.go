package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/nsnet/nsnet", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := FromBuildInfo("nsnet", "", bi).String(), "nsnet (devel) (revision 0123456789ab, 2026-12-01T10:00:00Z, modified) go1.26.8"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	bi.Main.Version, bi.Settings = "v1.2.3", nil
	if got, want := FromBuildInfo("nsnet-cni", "", bi).String(), "nsnet-cni v1.2.3 go1.26.8"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := FromBuildInfo("nsnet", "v9", bi).Version; got != "v9" {
		t.Errorf("the stamp does not win: %q", got)
	}
}
