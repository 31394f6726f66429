package record

import (
	"crypto/rand"
	"math/big"
	"regexp"
)

// Word lists for generated container names ("adjective_noun"), Berth's own:
// a harbour theme.
var (
	nameAdjectives = []string{
		"amber", "bold", "brave", "brisk", "calm", "clever", "cosy", "crisp", "daring", "deft",
		"eager", "fair", "fleet", "gentle", "glad", "grand", "hardy", "humble", "jolly", "keen",
		"kind", "lively", "loyal", "lucky", "merry", "mighty", "nimble", "noble", "patient", "plucky",
		"proud", "quick", "quiet", "rapid", "ready", "salty", "serene", "sharp", "shy", "silent",
		"sleek", "smooth", "snug", "spry", "stately", "steady", "stout", "sunny", "swift", "tidy",
		"trusty", "vivid", "wary", "wise", "witty", "zesty",
	}
	nameNouns = []string{
		"anchor", "beacon", "bollard", "breakwater", "buoy", "cargo", "clipper", "compass", "coracle", "crane",
		"dinghy", "dock", "ferry", "frigate", "galleon", "gangway", "harbor", "hawser", "helm", "hull",
		"jetty", "keel", "ketch", "launch", "lighthouse", "mast", "mooring", "oar", "pier", "pilot",
		"quay", "raft", "rudder", "sail", "schooner", "skiff", "sloop", "spar", "steamer", "tanker",
		"tender", "tide", "trawler", "tug", "wharf", "yacht", "yawl",
	}
	// ValidName is Docker's container name rule.
	ValidName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
)

func pick(list []string) string {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
	return list[n.Int64()]
}

// generateName returns a random "adjective_noun" name; retry adds a digit
// suffix as Docker does after a collision.
func generateName(retry int) string {
	name := pick(nameAdjectives) + "_" + pick(nameNouns)
	if retry > 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(10))
		name += n.String()
	}
	return name
}
