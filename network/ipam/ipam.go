// Package ipam is berth's IPv4 address allocator: a directory of pool files,
// one per network, each guarded by its own flock so that any number of berth
// processes allocate from the same pool without a daemon and never hand out
// one address twice.
//
// Addresses are keyed by owner (berth uses the container ID). Allocate is
// idempotent per owner: asking again returns the address the owner already
// holds, so a retry after a crash neither leaks nor duplicates. Release is
// idempotent too. The allocation is written (atomic rename) before Allocate
// returns, so the caller can record it and only then create kernel
// resources; whatever a kill -9 leaves behind is found again by owner.
// Pool files are replaced by rename without fsync: after a power loss
// (when no container is running any more) a pool file may be behind,
// empty or torn, and an unreadable one counts as empty.
//
// On-disk layout under the directory given to Open:
//
//	<pool>.json   {"allocations": {"10.213.0.2": "<owner>", ...}, "last": "10.213.0.2"}
//	<pool>.lock   flock target for that pool
//
// Only IPv4 is supported.
package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthproject/berth/network/internal/filelock"
	"github.com/containerd/errdefs"
)

// Range describes what a pool may hand out.
type Range struct {
	// Subnet is the network, e.g. 10.213.0.0/24. Its network and broadcast
	// addresses are never allocated.
	Subnet netip.Prefix
	// IPRange optionally restricts allocation to a sub-prefix of Subnet
	// (Docker's --ip-range). Explicitly requested addresses may lie anywhere
	// in Subnet. Zero means all of Subnet.
	IPRange netip.Prefix
	// Gateway is reserved and never allocated. Zero means none.
	Gateway netip.Addr
}

// Validate checks that r is a usable IPv4 range: errdefs.ErrInvalidArgument
// for a non-IPv4 or too small subnet (smaller than /30), an IPRange outside
// Subnet or a gateway outside Subnet or equal to its network/broadcast
// address.
func (r Range) Validate() error {
	if !r.Subnet.IsValid() || !r.Subnet.Addr().Is4() {
		return fmt.Errorf("invalid subnet %q: only IPv4 subnets are supported: %w", r.Subnet, errdefs.ErrInvalidArgument)
	}
	if r.Subnet != r.Subnet.Masked() {
		return fmt.Errorf("invalid subnet %s: host bits set (did you mean %s?): %w", r.Subnet, r.Subnet.Masked(), errdefs.ErrInvalidArgument)
	}
	if r.Subnet.Bits() > 30 {
		return fmt.Errorf("subnet %s is too small (at most /30): %w", r.Subnet, errdefs.ErrInvalidArgument)
	}
	if r.IPRange.IsValid() {
		if r.IPRange != r.IPRange.Masked() || r.IPRange.Bits() < r.Subnet.Bits() || !r.Subnet.Contains(r.IPRange.Addr()) {
			return fmt.Errorf("ip-range %s is not inside subnet %s: %w", r.IPRange, r.Subnet, errdefs.ErrInvalidArgument)
		}
	}
	if r.Gateway.IsValid() {
		if !r.Subnet.Contains(r.Gateway) || r.Gateway == r.Subnet.Addr() || r.Gateway == broadcast(r.Subnet) {
			return fmt.Errorf("gateway %s is not a usable address of subnet %s: %w", r.Gateway, r.Subnet, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Store is a directory of pools. It holds no open files between calls and
// is safe for concurrent use by goroutines and processes.
type Store struct{ dir string }

// Open returns the store in dir, creating the directory.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	return &Store{dir: dir}, nil
}

type poolFile struct {
	Allocations map[string]string `json:"allocations"` // address -> owner
	Last        string            `json:"last,omitempty"`
}

func (s *Store) paths(pool string) (data, lock string, err error) {
	if pool == "" || strings.ContainsAny(pool, `/\`) || strings.HasPrefix(pool, ".") {
		return "", "", fmt.Errorf("ipam: invalid pool name %q: %w", pool, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.dir, pool+".json"), filepath.Join(s.dir, pool+".lock"), nil
}

// update runs fn on the pool's content under its lock and writes the result
// back when fn reports a change.
func (s *Store) update(ctx context.Context, pool string, fn func(p *poolFile) (changed bool, err error)) error {
	data, lockPath, err := s.paths(pool)
	if err != nil {
		return err
	}
	l, err := filelock.Acquire(ctx, lockPath)
	if err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	defer l.Unlock()
	var p poolFile
	if err := filelock.ReadJSON(data, &p); err != nil {
		var syntax *json.SyntaxError
		if !errors.As(err, &syntax) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("ipam: %w", err)
		}
		// Pool files are written without fsync (see update below), so
		// a power loss may leave one empty or torn; nothing that owned
		// an address in it is alive any more, so it counts as empty.
		p = poolFile{}
	}
	if p.Allocations == nil {
		p.Allocations = map[string]string{}
	}
	changed, err := fn(&p)
	if err != nil || !changed {
		return err
	}
	// Allocations belong to running containers, which no reboot
	// outlives: after a power loss every owner in a pool is dead, so a
	// pool file that comes back old, empty or torn (read as empty above)
	// is as good as the latest one, and Reclaim releases whatever dead
	// owners it still lists. So the file is not fsynced at all (see
	// filelock.WriteJSONUnsynced): a kill -9 still sees the old or the
	// new content, which is what keeps allocations unique.
	if err := filelock.WriteJSONUnsynced(data, &p); err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	return nil
}

// Allocate gives owner an address of pool and records it (visible to
// every process, and surviving a kill -9 of this one) before returning.
//
// If owner already holds an address in pool, that address is returned
// (when want is zero or equal to it). If want is valid, exactly that address
// is allocated: errdefs.ErrInvalidArgument when it is outside r.Subnet or
// is the network, broadcast or gateway address, errdefs.ErrConflict when
// another owner holds it. Otherwise the next free address after the most
// recently allocated one is chosen (addresses are not reused immediately);
// when none is left the error wraps errdefs.ErrUnavailable and says
// "no available IPv4 addresses".
func (s *Store) Allocate(ctx context.Context, pool string, r Range, owner string, want netip.Addr) (netip.Addr, error) {
	if err := r.Validate(); err != nil {
		return netip.Addr{}, err
	}
	if owner == "" {
		return netip.Addr{}, fmt.Errorf("ipam: empty owner: %w", errdefs.ErrInvalidArgument)
	}
	if want.IsValid() {
		if !want.Is4() || !r.Subnet.Contains(want) || want == r.Subnet.Addr() || want == broadcast(r.Subnet) || want == r.Gateway {
			return netip.Addr{}, fmt.Errorf("address %s is not available in subnet %s: %w", want, r.Subnet, errdefs.ErrInvalidArgument)
		}
	}
	var got netip.Addr
	err := s.update(ctx, pool, func(p *poolFile) (bool, error) {
		for a, o := range p.Allocations {
			if o != owner {
				continue
			}
			held, _ := netip.ParseAddr(a)
			if !want.IsValid() || want == held {
				got = held
				return false, nil
			}
			return false, fmt.Errorf("owner %s already holds %s in pool %s, not %s: %w", owner, held, pool, want, errdefs.ErrConflict)
		}
		if want.IsValid() {
			if o, ok := p.Allocations[want.String()]; ok {
				return false, fmt.Errorf("address %s is already in use (by %.12s): %w", want, o, errdefs.ErrConflict)
			}
			got = want
		} else {
			rng := r.Subnet
			if r.IPRange.IsValid() {
				rng = r.IPRange
			}
			got = nextFree(p, r, rng)
			if !got.IsValid() {
				return false, fmt.Errorf("no available IPv4 addresses in %s: %w", rng, errdefs.ErrUnavailable)
			}
			p.Last = got.String()
		}
		p.Allocations[got.String()] = owner
		return true, nil
	})
	return got, err
}

// nextFree scans rng round-robin starting after p.Last.
func nextFree(p *poolFile, r Range, rng netip.Prefix) netip.Addr {
	first, last := rng.Addr(), broadcast(rng)
	start := first
	if l, err := netip.ParseAddr(p.Last); err == nil && rng.Contains(l) && l != last {
		start = l.Next()
	}
	a := start
	for {
		usable := a != r.Subnet.Addr() && a != broadcast(r.Subnet) && a != r.Gateway
		if _, taken := p.Allocations[a.String()]; usable && !taken {
			return a
		}
		if a == last {
			a = first
		} else {
			a = a.Next()
		}
		if a == start {
			return netip.Addr{}
		}
	}
}

// Release frees every address owner holds in pool. It is idempotent:
// releasing an owner with no address, or in a pool that does not exist,
// returns nil.
func (s *Store) Release(ctx context.Context, pool, owner string) error {
	return s.update(ctx, pool, func(p *poolFile) (bool, error) {
		changed := false
		for a, o := range p.Allocations {
			if o == owner {
				delete(p.Allocations, a)
				changed = true
			}
		}
		return changed, nil
	})
}

// Allocations returns a copy of pool's allocations, address to owner.
// A pool never allocated from is empty, not an error.
func (s *Store) Allocations(ctx context.Context, pool string) (map[netip.Addr]string, error) {
	out := map[netip.Addr]string{}
	err := s.update(ctx, pool, func(p *poolFile) (bool, error) {
		for a, o := range p.Allocations {
			if ip, err := netip.ParseAddr(a); err == nil {
				out[ip] = o
			}
		}
		return false, nil
	})
	return out, err
}

// Delete removes pool's files. It is idempotent.
func (s *Store) Delete(ctx context.Context, pool string) error {
	data, lock, err := s.paths(pool)
	if err != nil {
		return err
	}
	if err := os.Remove(data); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("ipam: %w", err)
	}
	if err := os.Remove(lock); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("ipam: %w", err)
	}
	return nil
}

// broadcast returns the last address of p.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		a[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return netip.AddrFrom4(a)
}

// Broadcast returns the last (broadcast) address of an IPv4 prefix.
func Broadcast(p netip.Prefix) netip.Addr { return broadcast(p) }
