// Package api serves the Docker Engine API over a Backend (the engine), so
// that the docker CLI, docker-py and docker-compose work against Berth
// unchanged. The contract is docs/v1.50.yaml of github.com/moby/moby/api;
// request and response bodies use that module's Go types.
//
// The server accepts API versions MinVersion to MaxVersion, as a path
// prefix (/v1.45/containers/json) or none (the newest). Every response
// carries Api-Version, Docker-Experimental, Ostype and Server headers.
// Errors are Docker's {"message": …} with a status chosen from the error's
// errdefs category in one place (statusOf).
package api

import (
	"context"
	"log"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/images"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/api/listen"
	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/internal/idletrim"
)

// The API versions served: requests for versions outside the range get 400.
const (
	MinVersion = "1.24"
	MaxVersion = "1.50"
)

// Options configures a Server.
type Options struct {
	// Backend does the work; required.
	Backend Backend
	// Version is Berth's version, reported by /version and the Server
	// header ("Berth/VERSION").
	Version string
	// Events is the event log the handlers append to and /events reads;
	// nil for none (then /events streams nothing).
	Events Events
	// Volumes is the named-volume store; nil disables /volumes (501).
	Volumes Volumes
	// Networks manages networks; nil for Backend.Networks().
	Networks Networks
	// Host reaches the container files the handlers use beside the
	// engine; nil for the files under Backend.Options().RunRoot.
	Host Host
	// IdleTimeout, when > 0, makes Serve return once no request has been
	// in flight and no stream open for that long.
	IdleTimeout time.Duration
	// Debug logs every request and its duration through Logf.
	Debug bool
	// Logf logs server-side faults; nil for log.Printf.
	Logf func(format string, args ...any)
}

// Server is the API server. Create it with New and run it with Serve.
type Server struct {
	opts   Options
	b      Backend
	mux    *http.ServeMux
	execs  stream.Table  // exec instances (api/exec.go)
	execer stream.Execer // runs them; nil: exec answers 501
	trim   idletrim.Trimmer
}

// New returns a server over opts.Backend.
func New(opts Options) *Server {
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Host == nil {
		opts.Host = localHost{b: opts.Backend}
	}
	s := &Server{opts: opts, b: opts.Backend, mux: http.NewServeMux(), execer: execerOf(opts.Backend)}
	s.routes()
	return s
}

type ctxKey int

const versionKey ctxKey = 0

// versionOf is the API version of the request (MaxVersion when the path
// had no prefix).
func versionOf(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey).(string); ok {
		return v
	}
	return MaxVersion
}

var (
	versionPrefix    = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)
	malformedVersion = regexp.MustCompile(`^v[0-9]`)
)

// ServeHTTP strips and checks the version prefix, sets the headers every
// response carries, and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer s.trim.Touch() // an idle server gives its garbage back
	if s.opts.Debug {
		start := time.Now()
		s.opts.Logf("api: %s %s", r.Method, r.URL)
		defer func() { s.opts.Logf("api: %s %s done in %s", r.Method, r.URL.Path, time.Since(start)) }()
	}
	h := w.Header()
	h.Set("Api-Version", MaxVersion)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "Berth/"+s.opts.Version+" (linux)")
	version := MaxVersion
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		version = m[1]
		if convert.CompareVersions(version, MaxVersion) > 0 {
			wire.Error(w, wire.Invalid("client version "+version+" is too new. Maximum supported API version is "+MaxVersion))
			return
		}
		if convert.CompareVersions(version, MinVersion) < 0 {
			wire.Error(w, wire.Invalid("client version "+version+" is too old. Minimum supported API version is "+MinVersion+", please upgrade your client to a newer version"))
			return
		}
		r2 := *r
		u := *r.URL
		u.Path = m[2]
		u.RawPath = ""
		r2.URL = &u
		r = &r2
	} else if strings.HasPrefix(r.URL.Path, "/v") && !strings.HasPrefix(r.URL.Path, "/volumes") {
		if seg, _, _ := strings.Cut(r.URL.Path[1:], "/"); malformedVersion.MatchString(seg) {
			wire.Error(w, wire.Invalid("malformed API version in path: "+seg))
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), versionKey, version))
	s.mux.ServeHTTP(w, r)
}

// Serve serves the API on the listeners until ctx ends or, with
// IdleTimeout, the server has been idle that long (listen.Serve); then it
// stops accepting and waits (up to 10 s) for requests in flight. It
// returns nil on such an orderly stop.
func (s *Server) Serve(ctx context.Context, listeners ...net.Listener) error {
	return listen.Serve(ctx, s, s.opts.IdleTimeout, listeners...)
}

// routes registers the handlers; package api/internal/images registers
// the image routes.
func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /_ping", s.ping)
	m.HandleFunc("HEAD /_ping", s.ping)
	m.HandleFunc("GET /version", s.version)
	m.HandleFunc("GET /info", s.info)
	m.HandleFunc("GET /events", s.events)
	m.HandleFunc("GET /system/df", s.systemDF)

	m.HandleFunc("GET /containers/json", s.listContainers)
	m.HandleFunc("POST /containers/create", s.createContainer)
	m.HandleFunc("GET /containers/{id}/json", s.inspectContainer)
	m.HandleFunc("POST /containers/{id}/start", s.startContainer)
	m.HandleFunc("POST /containers/{id}/stop", s.stopContainer)
	m.HandleFunc("POST /containers/{id}/restart", s.restartContainer)
	m.HandleFunc("POST /containers/{id}/kill", s.killContainer)
	m.HandleFunc("POST /containers/{id}/wait", s.waitContainer)
	m.HandleFunc("DELETE /containers/{id}", s.removeContainer)
	m.HandleFunc("GET /containers/{id}/logs", s.logs)
	m.HandleFunc("POST /containers/{id}/attach", s.attach)
	m.HandleFunc("POST /containers/{id}/resize", s.resize)
	m.HandleFunc("POST /containers/prune", s.pruneContainers)
	m.HandleFunc("GET /containers/{id}/top", s.top)
	m.HandleFunc("GET /containers/{id}/stats", s.stats)
	m.HandleFunc("POST /containers/{id}/pause", s.pause)
	m.HandleFunc("POST /containers/{id}/unpause", s.unpause)
	m.HandleFunc("POST /containers/{id}/rename", s.rename)
	m.HandleFunc("HEAD /containers/{id}/archive", s.headArchive)
	m.HandleFunc("GET /containers/{id}/archive", s.getArchive)
	m.HandleFunc("PUT /containers/{id}/archive", s.putArchive)
	m.HandleFunc("POST /containers/{id}/exec", s.createExec)
	m.HandleFunc("POST /exec/{id}/start", s.startExec)
	m.HandleFunc("POST /exec/{id}/resize", s.resizeExec)
	m.HandleFunc("GET /exec/{id}/json", s.inspectExec)

	// Images, and the container routes that read or make images (diff,
	// export, commit).
	(&images.Handler{B: s.b, Logf: s.opts.Logf}).Register(m)

	m.HandleFunc("GET /networks", s.listNetworks)
	m.HandleFunc("POST /networks/create", s.createNetwork)
	m.HandleFunc("POST /networks/prune", s.pruneNetworks)
	m.HandleFunc("GET /networks/{id}", s.inspectNetwork)
	m.HandleFunc("DELETE /networks/{id}", s.removeNetwork)
	m.HandleFunc("POST /networks/{id}/connect", s.connectNetwork)
	m.HandleFunc("POST /networks/{id}/disconnect", s.disconnectNetwork)

	m.HandleFunc("GET /volumes", s.listVolumes)
	m.HandleFunc("POST /volumes/create", s.createVolume)
	m.HandleFunc("POST /volumes/prune", s.pruneVolumes)
	m.HandleFunc("GET /volumes/{name}", s.inspectVolume)
	m.HandleFunc("DELETE /volumes/{name}", s.removeVolume)

	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wire.Error(w, wire.NotFound("page not found"))
	})
}

// networks is the network manager: Options.Networks, else the backend's.
func (s *Server) networks() (Networks, error) {
	if s.opts.Networks != nil {
		return s.opts.Networks, nil
	}
	m, err := s.b.Networks()
	if err != nil {
		return nil, err
	}
	return m, nil
}

// record appends an event if the server has an event log.
func (s *Server) record(typ, action, id string, attrs map[string]string) {
	if s.opts.Events == nil {
		return
	}
	if err := s.opts.Events.Append(events.Event{Type: typ, Action: action, ID: id, Attributes: attrs}); err != nil {
		s.opts.Logf("api: event log: %v", err)
	}
}
