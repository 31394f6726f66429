package containerops

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func inspectMap(t *testing.T, in InspectInput) map[string]any {
	t.Helper()
	data, err := json.Marshal(InspectJSON{Inspect(in)})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestInspectLegacyNetworkFields(t *testing.T) {
	c := record.Container{ID: "0123456789ab" + "0123456789abcdef0123456789abcdef0123456789abcdef0123", Name: "x"}
	c.Net.Mode = "bridge"
	c.State.Status = record.StatusRunning
	ep := network.Endpoint{NetworkID: "n1", NetworkName: "bridge", ContainerID: c.ID,
		Address: netip.MustParsePrefix("10.77.0.5/16"), Gateway: netip.MustParseAddr("10.77.0.1"), MAC: "02:42:0a:4d:00:05"}
	ns := inspectMap(t, InspectInput{C: c, Endpoints: []network.Endpoint{ep}})["NetworkSettings"].(map[string]any)
	want := map[string]any{"IPAddress": "10.77.0.5", "IPPrefixLen": 16.0, "Gateway": "10.77.0.1", "MacAddress": "02:42:0a:4d:00:05",
		"EndpointID": ep.EndpointID(), "Bridge": "", "GlobalIPv6Address": "", "IPv6Gateway": "", "SecondaryIPAddresses": nil}
	for k, v := range want {
		if got, ok := ns[k]; !ok || got != v {
			t.Errorf("NetworkSettings.%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if len(ep.EndpointID()) != 64 {
		t.Errorf("EndpointID %q", ep.EndpointID())
	}
	if _, ok := ns["Networks"].(map[string]any)["bridge"]; !ok {
		t.Errorf("Networks lost: %v", ns["Networks"])
	}

	// On a user network only, the legacy fields are empty.
	c.Net.Mode, ep.NetworkName = "app", "app"
	ns = inspectMap(t, InspectInput{C: c, Endpoints: []network.Endpoint{ep}})["NetworkSettings"].(map[string]any)
	if ns["IPAddress"] != "" || ns["Gateway"] != "" || ns["IPPrefixLen"] != 0.0 {
		t.Errorf("legacy fields on a user network: %v %v %v", ns["IPAddress"], ns["Gateway"], ns["IPPrefixLen"])
	}
}

func TestInspectExposedPorts(t *testing.T) {
	c := record.Container{ID: "0123456789ab" + "0123456789abcdef0123456789abcdef0123456789abcdef0123", Name: "x"}
	c.Net.Mode = "bridge"
	c.Net.Exposed = []string{"7000/tcp"}
	c.Net.Ports = []network.PortBinding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, {ContainerPort: 53, Proto: "udp"}}
	img := ocispec.Image{Config: ocispec.ImageConfig{ExposedPorts: map[string]struct{}{"443/tcp": {}}}}
	cfg := inspectMap(t, InspectInput{C: c, Image: img})["Config"].(map[string]any)
	got := cfg["ExposedPorts"].(map[string]any)
	for _, p := range []string{"7000/tcp", "80/tcp", "53/udp", "443/tcp"} {
		if _, ok := got[p]; !ok {
			t.Errorf("ExposedPorts %v lacks %s", got, p)
		}
	}
	if len(got) != 4 {
		t.Errorf("ExposedPorts %v", got)
	}
	c.Net.Exposed, c.Net.Ports = nil, nil
	if cfg := inspectMap(t, InspectInput{C: c})["Config"].(map[string]any); cfg["ExposedPorts"] != nil {
		t.Errorf("ExposedPorts with none: %v", cfg["ExposedPorts"])
	}
}
