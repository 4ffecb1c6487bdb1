package cni

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
)

// ConfigError reports a network configuration field that breaks a rule. It
// becomes CNI error 7 (invalid network config).
type ConfigError struct {
	Field string // JSON path of the field, e.g. "ipam.subnets[1]"
	Rule  string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid network configuration: %s: %s", e.Field, e.Rule)
}

// UnsupportedFieldError reports a configuration key nsnet does not know. The
// spec requires the message of CNI error 2 to carry the key and its value.
type UnsupportedFieldError struct {
	Field string
	Value string // the raw JSON value, shortened
}

func (e *UnsupportedFieldError) Error() string {
	return fmt.Sprintf("unsupported field %q in network configuration (value %s)", e.Field, e.Value)
}

// DecodeError reports input that is not valid JSON of the expected shape. It
// becomes CNI error 6.
type DecodeError struct {
	What string // "network configuration", "prevResult", ...
	Err  error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("cannot decode %s: %v", e.What, e.Err) }
func (e *DecodeError) Unwrap() error { return e.Err }

// EnvError reports a CNI_* environment variable that is missing or invalid.
// It becomes CNI error 4, whose message must name the variable.
type EnvError struct {
	Var  string
	Rule string
}

func (e *EnvError) Error() string { return fmt.Sprintf("%s: %s", e.Var, e.Rule) }

// NetNSError reports a CNI_NETNS that cannot be used. A namespace that does
// not exist becomes CNI error 3 (container unknown); anything else, including
// the plugin's own namespace, error 8 (invalid netns).
type NetNSError struct {
	Path string
	Err  error
}

func (e *NetNSError) Error() string { return fmt.Sprintf("CNI_NETNS %s: %v", e.Path, e.Err) }
func (e *NetNSError) Unwrap() error { return e.Err }

// ErrOwnNetNS is wrapped when CNI_NETNS names the plugin's own network
// namespace: moving the "container" end there would wire the host to itself.
var ErrOwnNetNS = errors.New("is the plugin's own network namespace, not a container's")

// ExhaustedError reports a subnet without a free address. ADD turns it into
// CNI error 11 (try again later: addresses come back when containers go);
// STATUS into error 50 (cannot service ADD).
type ExhaustedError struct {
	Subnet netip.Prefix
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("no free address left in %s", e.Subnet)
}

// TakenError reports an address the runtime asked for that another
// attachment holds. Like a full subnet it becomes CNI error 11 (try again
// later): the holder may be on its way out.
type TakenError struct {
	Addr  netip.Addr
	Owner string // CID:IFNAME
}

func (e *TakenError) Error() string {
	return fmt.Sprintf("address %s is held by attachment %s: DEL that one first, or ask for another address", e.Addr, e.Owner)
}

// MACTakenError reports a MAC the runtime asked for that another attachment
// on the same bridge holds: two would break the bridge's forwarding. Like a
// held address it becomes CNI error 11.
type MACTakenError struct {
	MAC   string
	Owner string // CID:IFNAME
}

func (e *MACTakenError) Error() string {
	return fmt.Sprintf("MAC %s is held by attachment %s on this bridge: DEL that one first, or ask for another MAC", e.MAC, e.Owner)
}

// ExistsError reports an ADD for an attachment that is already recorded, or
// an interface name that is already taken.
type ExistsError struct {
	What string
	Hint string // what to do about it, if anything
}

func (e *ExistsError) Error() string {
	if e.Hint == "" {
		return e.What + " already exists"
	}
	return e.What + " already exists; " + e.Hint
}
func (e *ExistsError) Unwrap() error { return fs.ErrExist }

// CheckError reports a CHECK that found the attachment not as ADD left it.
type CheckError struct {
	What string
}

func (e *CheckError) Error() string { return "check failed: " + e.What }

// DelegateError wraps the failure of a delegated IPAM plugin; the plugin's own
// CNI error code, when it sent one, is kept.
type DelegateError struct {
	Plugin string
	Verb   string
	Err    error
}

func (e *DelegateError) Error() string {
	return fmt.Sprintf("ipam plugin %q %s: %v", e.Plugin, e.Verb, e.Err)
}
func (e *DelegateError) Unwrap() error { return e.Err }

// StatusError reports that the plugin cannot service ADD (CNI error 50).
type StatusError struct {
	Err error
}

func (e *StatusError) Error() string { return "not ready: " + e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// toCNI converts an error into the *types.Error that skel prints. This is
// the only place where nsnet's typed errors meet CNI error codes.
func toCNI(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var (
		cfg   *ConfigError
		unsup *UnsupportedFieldError
		dec   *DecodeError
		env   *EnvError
		nse   *NetNSError
		exh   *ExhaustedError
		tkn   *TakenError
		mtkn  *MACTakenError
		st    *StatusError
		del   *DelegateError
		te    *types.Error
	)
	switch {
	case errors.As(err, &st):
		if errors.As(err, &del) && errors.As(err, &te) {
			return types.NewError(te.Code, msg, te.Details)
		}
		return types.NewError(types.ErrPluginNotAvailable, msg, "")
	case errors.As(err, &unsup):
		return types.NewError(types.ErrUnsupportedField, msg, "")
	case errors.As(err, &cfg):
		return types.NewError(types.ErrInvalidNetworkConfig, msg, "")
	case errors.As(err, &dec):
		return types.NewError(types.ErrDecodingFailure, msg, "")
	case errors.As(err, &env):
		return types.NewError(types.ErrInvalidEnvironmentVariables, msg, "")
	case errors.As(err, &nse):
		if errors.Is(err, fs.ErrNotExist) {
			return types.NewError(types.ErrUnknownContainer, msg, "")
		}
		return types.NewError(types.ErrInvalidNetNS, msg, "")
	case errors.As(err, &exh), errors.As(err, &tkn), errors.As(err, &mtkn):
		return types.NewError(types.ErrTryAgainLater, msg, "")
	case errors.As(err, &del) && errors.As(err, &te):
		return types.NewError(te.Code, msg, te.Details)
	}
	return types.NewError(types.ErrInternal, msg, "")
}
