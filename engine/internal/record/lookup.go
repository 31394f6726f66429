package record

import (
	"fmt"
	"strings"

	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
)

// Reserve stores c under a unique name, generating one if c.Name is empty.
func Reserve(tx *state.Tx, c *Container) error {
	if c.Name == "" {
		for i := 0; ; i++ {
			c.Name = generateName(i)
			if !tx.Has(NamesBucket, c.Name) {
				break
			}
		}
	}
	var owner string
	if tx.Get(NamesBucket, c.Name, &owner) == nil {
		return fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.: %w", c.Name, owner, errdefs.ErrConflict)
	}
	if err := tx.Put(NamesBucket, c.Name, c.ID); err != nil {
		return err
	}
	return tx.Put(Bucket, c.ID, c)
}

// Delete removes the record of c and its name.
func Delete(tx *state.Tx, c Container) error {
	if err := tx.Delete(NamesBucket, c.Name); err != nil {
		return err
	}
	return tx.Delete(Bucket, c.ID)
}

// Lookup resolves a full ID, a name, or a unique ID prefix, in
// Docker's order. Unknown: errdefs.ErrNotFound ("No such container: x").
func Lookup(tx *state.Tx, ref string) (Container, error) {
	var c Container
	if tx.Get(Bucket, ref, &c) == nil {
		return c, nil
	}
	var id string
	if tx.Get(NamesBucket, strings.TrimPrefix(ref, "/"), &id) == nil && tx.Get(Bucket, id, &c) == nil {
		return c, nil
	}
	if ref != "" && isHex(ref) {
		var matches []string
		tx.ForEach(Bucket, func(k string, _ []byte) error {
			if strings.HasPrefix(k, ref) {
				matches = append(matches, k)
			}
			return nil
		})
		if len(matches) > 1 {
			return c, fmt.Errorf("multiple IDs found with provided prefix: %s: %w", ref, errdefs.ErrInvalidArgument)
		}
		if len(matches) == 1 {
			return c, tx.Get(Bucket, matches[0], &c)
		}
	}
	return c, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
}

// isHex reports whether s is lower-case hexadecimal.
func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdef") == ""
}
