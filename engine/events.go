package engine

import (
	"maps"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/events"
)

// Events is the engine's event log, ROOT/events.jsonl (package events):
// every operation appends Docker's event for it there, whichever process
// makes it (the CLI, the API service, the monitor's cleanup).
func (e *Engine) Events() *events.Log { return events.Open(e.opts.Root) }

// emit appends one event; a failure to record it does not fail the
// operation, which has happened.
func (e *Engine) emit(typ, action, id string, attrs map[string]string) {
	e.Events().Append(events.Event{Type: typ, Action: action, ID: id, Attributes: attrs})
}

// ContainerEventAttributes are the Actor.Attributes of a container event,
// as Docker's: the container's labels, then "name" (without the leading
// "/") and "image" (as the user gave it), then extra (exitCode, signal,
// oldName …). The result is a new map, never nil.
func ContainerEventAttributes(c Container, extra map[string]string) map[string]string {
	attrs := maps.Clone(c.Labels)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["name"] = c.Name
	attrs["image"] = c.Image
	if c.Image == "" {
		attrs["image"] = c.ImageName
	}
	maps.Copy(attrs, extra)
	return attrs
}

// emitContainer appends a container event with ContainerEventAttributes.
func (e *Engine) emitContainer(c record.Container, action string, extra map[string]string) {
	e.emit("container", action, c.ID, ContainerEventAttributes(c, extra))
}

// emitRemovedImages appends rmi's untag and delete events.
func (e *Engine) emitRemovedImages(rs []RemovedImage) {
	for _, r := range rs {
		if r.Untagged != "" {
			e.emit("image", "untag", r.Untagged, map[string]string{"name": r.Untagged})
		}
		if r.Deleted != "" {
			e.emit("image", "delete", r.Deleted, map[string]string{"name": r.Deleted})
		}
	}
}

// emitNetwork appends a network event (create, destroy, connect,
// disconnect) with Docker's name and type attributes, plus the container
// for connect and disconnect.
func (e *Engine) emitNetwork(n Network, action, container string) {
	attrs := map[string]string{"name": n.Name, "type": n.Driver}
	if container != "" {
		attrs["container"] = container
	}
	e.emit("network", action, n.ID, attrs)
}
