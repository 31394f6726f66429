package stream

import (
	"encoding/json"
	"net/http"

	"github.com/moby/moby/api/types/jsonstream"
)

// Send sends msg as one jsonmessage line as it is (no parsing of its
// status), starting the stream (the 200 header) if needed: for lines the
// caller has already shaped, such as push's final digest line and its
// aux message.
func (p *Progress) Send(msg jsonstream.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start()
	if err := json.NewEncoder(p.w).Encode(msg); err != nil {
		return err
	}
	http.NewResponseController(p.w).Flush()
	return nil
}
