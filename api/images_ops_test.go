package api

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/privsep"
)

// The privilege-separated client serves the image routes too.
var _ ImageOps = (*privsep.Client)(nil)

func TestRegistryAuthHeader(t *testing.T) {
	js := `{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}`
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.StdEncoding, base64.RawURLEncoding} {
		c, err := convert.RegistryAuth(enc.EncodeToString([]byte(js)))
		if err != nil || c == nil || c.Username != "u" || c.Password != "p?>" {
			t.Errorf("%v: %v %v", enc, c, err)
		}
	}
	if c, err := convert.RegistryAuth(base64.URLEncoding.EncodeToString([]byte("{}"))); c != nil || err != nil {
		t.Errorf("empty config: %v %v", c, err)
	}
	if _, err := convert.RegistryAuth("!!!"); err == nil {
		t.Error("garbage accepted")
	}
	c, _ := convert.RegistryAuth(base64.URLEncoding.EncodeToString([]byte(js)))
	if s := c.String(); strings.Contains(s, "p?>") {
		t.Errorf("credential printed: %s", s)
	}
}
