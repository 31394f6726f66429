package api

import (
	"encoding/json"
	"net/http"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	volumetypes "github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"
)

func notFound(msg string) error { return &categorized{msg: msg, cat: errdefs.ErrNotFound} }

// ping answers GET and HEAD /_ping with "OK" and the headers the CLI
// negotiates from.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write([]byte("OK"))
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "Berth"},
		Version:       s.opts.Version,
		APIVersion:    MaxVersion,
		MinAPIVersion: MinVersion,
		Os:            goruntime.GOOS,
		Arch:          goruntime.GOARCH,
		GoVersion:     goruntime.Version(),
		KernelVersion: kernelVersion(),
		Components: []system.ComponentVersion{{
			Name: "Engine", Version: s.opts.Version,
			Details: map[string]string{"ApiVersion": MaxVersion, "MinAPIVersion": MinVersion, "Os": goruntime.GOOS, "Arch": goruntime.GOARCH,
				"KernelVersion": kernelVersion(), "GoVersion": goruntime.Version(), "Experimental": "false"},
		}},
	})
}

func osName() string {
	data, _ := os.ReadFile("/etc/os-release")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cs, err := s.b.Containers(ctx, true)
	if err != nil {
		writeError(w, err)
		return
	}
	imgs, err := s.b.Images(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	o := s.b.Options()
	info := system.Info{
		ID: "berth", Containers: len(cs), Images: len(imgs),
		Driver: o.Snapshotter, DriverStatus: [][2]string{},
		Plugins:       system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "none"}, Log: []string{"k8s-file"}},
		MemoryLimit:   true,
		PidsLimit:     true,
		NFd:           0,
		SystemTime:    time.Now().Format(time.RFC3339Nano),
		LoggingDriver: "k8s-file", CgroupDriver: "cgroupfs", CgroupVersion: "2",
		KernelVersion: kernelVersion(), OperatingSystem: osName(), OSType: "linux", Architecture: goruntime.GOARCH,
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               goruntime.NumCPU(), DockerRootDir: o.Root,
		Name: hostname(), ServerVersion: s.opts.Version,
		Runtimes:        map[string]system.RuntimeWithStatus{o.Runtime: {Runtime: system.Runtime{Path: o.Runtime}}},
		DefaultRuntime:  o.Runtime,
		SecurityOptions: []string{"name=seccomp,profile=builtin"},
		Labels:          []string{},
		Swarm:           swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		Warnings:        []string{},
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		info.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	for _, c := range cs {
		if c.State.Status == engine.StatusRunning {
			info.ContainersRunning++
		} else {
			info.ContainersStopped++
		}
	}
	writeJSON(w, http.StatusOK, info)
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// events streams the event log (GET /events): since/until as Unix
// seconds (fractions allowed) or RFC 3339; filters type, event/action,
// container, image, network, volume. Without until it follows until the
// client goes away.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var opts events.ReadOptions
	var err error
	if opts.Since, err = convert.ParseTime(q.Get("since")); err != nil {
		writeError(w, err)
		return
	}
	if opts.Until, err = convert.ParseTime(q.Get("until")); err != nil {
		writeError(w, err)
		return
	}
	f, err := convert.ParseFilters(q.Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	opts.Follow = true
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	if s.opts.Events == nil {
		<-r.Context().Done()
		return
	}
	enc := json.NewEncoder(w)
	s.opts.Events.Read(r.Context(), opts, func(ev events.Event) error {
		if !f.Match("type", ev.Type) || !f.Match("event", ev.Action) || !f.Match("action", ev.Action) {
			return nil
		}
		if f.Has(ev.Type) && !f.Match(ev.Type, ev.ID) && !f.Match(ev.Type, ev.Attributes["name"]) {
			return nil
		}
		if err := enc.Encode(eventtypes.Message{
			Type: eventtypes.Type(ev.Type), Action: eventtypes.Action(ev.Action), Scope: "local",
			Actor: eventtypes.Actor{ID: ev.ID, Attributes: ev.Attributes},
			Time:  ev.TimeNano / int64(time.Second), TimeNano: ev.TimeNano,
		}); err != nil {
			return err
		}
		flush(w)
		return nil
	})
}

// systemDF is GET /system/df: images, containers and volumes with their
// sizes (build cache: none).
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	imgs, err := s.b.Images(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	cs, err := s.b.Containers(ctx, true)
	if err != nil {
		writeError(w, err)
		return
	}
	var resp struct {
		LayersSize int64
		Images     []imagetypes.Summary
		Containers []containertypes.Summary
		Volumes    []volumetypes.Volume
		BuildCache []any
	}
	resp.Images = convert.ImageSummaries(imgs, cs)
	for _, sum := range resp.Images {
		resp.LayersSize += sum.Size
	}
	for _, c := range cs {
		resp.Containers = append(resp.Containers, s.summary(ctx, c))
	}
	if s.opts.Volumes != nil {
		vols, _ := s.opts.Volumes.List()
		for _, v := range vols {
			dv := s.volumeView(v)
			dv.UsageData = &volumetypes.UsageData{Size: s.opts.Volumes.Size(v.Name), RefCount: int64(len(s.volumeUsers(ctx, v.Name)))}
			resp.Volumes = append(resp.Volumes, dv)
		}
	}
	resp.BuildCache = []any{}
	writeJSON(w, http.StatusOK, resp)
}

// flush pushes buffered output to the client.
func flush(w http.ResponseWriter) {
	http.NewResponseController(w).Flush()
}
