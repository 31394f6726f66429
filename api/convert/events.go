package convert

import (
	"time"

	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/image"
	eventtypes "github.com/moby/moby/api/types/events"
)

// MatchEvent applies GET /events's filters to ev with Docker's rules
// (moby's daemon/events filter): values of one key OR, keys AND.
//   - type, scope ("local"): exact.
//   - event (alias action): exact, except that when one of the values is
//     exec_create, exec_start or health_status every value matches as a
//     prefix ("exec_start" matches "exec_start: sh -c …").
//   - container, network, volume, daemon (and plugin, node, service,
//     secret, config, which no Berth event has): the actor's ID or "name"
//     attribute, exactly or by prefix, whatever ev's type (so container=X
//     keeps only the events whose actor is X).
//   - image: exact, on the actor's ID and its "name" (image events) or
//     "image" attribute (other events), each also with its tag stripped.
//   - label ("k" or "k=v", all of them): the actor's attributes (a
//     container event's attributes include its labels).
func (f Filters) MatchEvent(ev events.Event) bool {
	return f.matchAction("event", ev.Action) && f.matchAction("action", ev.Action) &&
		f.Match("type", ev.Type) && f.Match("scope", "local") &&
		f.matchActors(ev) && f.matchImage(ev) && (!f.Has("label") || f.MatchLabels(ev.Attributes))
}

// matchAction is the "event" key, or its alias "action" (see MatchEvent).
func (f Filters) matchAction(key, action string) bool {
	set := f[key]
	if len(set) == 0 || set[action] {
		return true
	}
	if !set["exec_create"] && !set["exec_start"] && !set["health_status"] {
		return false
	}
	return MatchPrefix(set, action)
}

// actorKeys are the filter keys matched on the actor (see MatchEvent).
var actorKeys = []string{"container", "network", "volume", "daemon", "plugin", "node", "service", "secret", "config"}

// matchActors applies every key of actorKeys to ev.
func (f Filters) matchActors(ev events.Event) bool {
	for _, k := range actorKeys {
		if !f.matchActor(k, ev) {
			return false
		}
	}
	return true
}

// matchActor is Docker's fuzzy match of key on ev's actor ID or name.
func (f Filters) matchActor(key string, ev events.Event) bool {
	set := f[key]
	if len(set) == 0 || set[ev.ID] || set[ev.Attributes["name"]] {
		return true
	}
	return MatchPrefix(set, ev.ID) || ev.Attributes["name"] != "" && MatchPrefix(set, ev.Attributes["name"])
}

// matchImage is the image key (see MatchEvent).
func (f Filters) matchImage(ev events.Event) bool {
	set := f["image"]
	if len(set) == 0 {
		return true
	}
	name := ev.Attributes["image"]
	if ev.Type == "image" {
		name = ev.Attributes["name"]
	}
	for _, v := range []string{ev.ID, name, stripTag(ev.ID), stripTag(name)} {
		if v != "" && set[v] {
			return true
		}
	}
	return false
}

// stripTag is s's familiar repository name without tag or digest, or s
// when it is no reference (an image ID).
func stripTag(s string) string {
	named, err := image.ParseReference(s)
	if err != nil {
		return s
	}
	repo, _ := image.RepositoryTag(named)
	return repo
}

// EventMessage is one message of GET /events: Docker's Message plus the
// fields Docker still fills for container and image events though the
// API deprecated them (status = action, id = actor ID, from = the
// container's image), which docker-compose 1.x reads.
type EventMessage struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	eventtypes.Message
}

// Event is ev as one message of GET /events (scope local): Attributes
// is always an object, never null (docker-compose 1.x indexes it).
func Event(ev events.Event) EventMessage {
	attrs := ev.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	m := EventMessage{Message: eventtypes.Message{
		Type: eventtypes.Type(ev.Type), Action: eventtypes.Action(ev.Action), Scope: "local",
		Actor: eventtypes.Actor{ID: ev.ID, Attributes: attrs},
		Time:  ev.TimeNano / int64(time.Second), TimeNano: ev.TimeNano,
	}}
	switch ev.Type {
	case "container":
		m.Status, m.ID, m.From = ev.Action, ev.ID, attrs["image"]
	case "image":
		m.Status, m.ID = ev.Action, ev.ID
	}
	return m
}
