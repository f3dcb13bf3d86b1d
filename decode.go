package tcpproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// This file decodes the tcpproxy config strictly and with errors that say
// where the problem is: the app, the field and the value. The native JSON,
// the plain config.json adapter and the Caddyfile all end up here, so there
// is one decoding path and one set of messages.

// UnmarshalJSON decodes the app config, naming the app and the field in
// every error. Keys match case-insensitively, as with encoding/json.
func (a *App) UnmarshalJSON(b []byte) error {
	var top struct {
		GracePeriod json.RawMessage   `json:"grace_period"`
		Apps        []json.RawMessage `json:"apps"`
	}
	if err := decodeFields(b, &top, ""); err != nil {
		return err
	}
	*a = App{}
	if top.GracePeriod != nil {
		if err := json.Unmarshal(top.GracePeriod, &a.GracePeriod); err != nil {
			return fmt.Errorf("grace_period: %v", describeError(err, &a.GracePeriod, top.GracePeriod))
		}
	}
	if top.Apps != nil {
		a.Apps = make([]*AppConfig, 0, len(top.Apps))
	}
	for i, raw := range top.Apps {
		app, err := decodeApp(raw)
		if err != nil {
			if app == nil || app.Name == "" {
				return fmt.Errorf("apps[%d]: %v", i, err)
			}
			return fmt.Errorf("app %q: %v", clip(app.Name), err)
		}
		a.Apps = append(a.Apps, app)
	}
	return nil
}

// decodeApp decodes one app. On error it still returns what it decoded of
// the app, so the caller can name it.
func decodeApp(raw json.RawMessage) (*AppConfig, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, errors.New("null app")
	}
	app := new(AppConfig)
	// The name first, so that errors in the other fields can name the app.
	var named struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &named)
	app.Name = named.Name
	return app, decodeFields(raw, app, "")
}

// decodeFields decodes the JSON object b into the struct that dst points to,
// one field at a time, so that each error names its field (prefixed with
// prefix). Unknown fields are errors that list the valid ones.
func decodeFields(b []byte, dst any, prefix string) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fmt.Errorf("want a JSON object, got %s %s", typeErr.Value, clip(string(b)))
		}
		return err
	}
	if obj == nil && prefix != "" {
		return nil // "health_checks": null
	}
	v := reflect.ValueOf(dst).Elem()
	fields := jsonFields(v.Type())
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		idx, ok := lookupField(fields, key)
		if !ok {
			return &unknownFieldError{name: prefix + key, valid: validFieldNames(fields)}
		}
		target := v.FieldByIndex(fields[idx].index).Addr().Interface()
		if err := json.Unmarshal(obj[key], target); err != nil {
			err = describeError(err, target, obj[key])
			if prefix != "" && strings.HasPrefix(err.Error(), prefix) || strings.HasPrefix(err.Error(), fields[idx].name+".") {
				return err // a nested field already named itself
			}
			var unknown *unknownFieldError
			if errors.As(err, &unknown) && strings.HasPrefix(unknown.name, fields[idx].name+".") {
				return err // unknown field "health_checks.x" names its object
			}
			return fmt.Errorf("%s%s: %v", prefix, fields[idx].name, err)
		}
	}
	return nil
}

// unknownFieldError is a key that names no field. name is its path
// ("health_checks.x"), so the object it is in needs no other mention.
type unknownFieldError struct {
	name, valid string
}

func (e *unknownFieldError) Error() string {
	return fmt.Sprintf("unknown field %q (valid: %s)", clip(e.name), e.valid)
}

// describeError restates an error decoding raw into target as what was
// wanted and what was given.
func describeError(err error, target any, raw json.RawMessage) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("want %s, got %s %s", describeType(typeErr.Type), typeErr.Value, clip(string(raw)))
	}
	if _, ok := target.(*Duration); ok {
		return fmt.Errorf("want %s, got %s", describeType(reflect.TypeFor[Duration]()), clip(string(raw)))
	}
	return err
}

type jsonField struct {
	name  string
	index []int
}

// jsonFields lists the JSON-tagged fields of t, including those promoted
// from embedded structs.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, index: f.Index})
	}
	return out
}

// lookupField finds key among fields: an exact match first, then a
// case-insensitive one (as encoding/json does).
func lookupField(fields []jsonField, key string) (int, bool) {
	for i, f := range fields {
		if f.name == key {
			return i, true
		}
	}
	for i, f := range fields {
		if strings.EqualFold(f.name, key) {
			return i, true
		}
	}
	return 0, false
}

func validFieldNames(fields []jsonField) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64:
		if t.Name() == "Duration" {
			return "a duration such as \"2s\""
		}
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Pointer, reflect.Map:
		return "a JSON object"
	}
	return t.String()
}

// maxQuoted is how much of a value an error quotes. A value of megabytes
// (a mistake, or hostile input to the admin API) would otherwise come back
// whole in the API's answer and in the log line of the failed load.
const maxQuoted = 256

// clip returns s cut to maxQuoted bytes (at a character boundary), saying
// how long it was.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	n := maxQuoted
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:n], len(s))
}

// clipArgs clips the strings and errors among format arguments.
func clipArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = clip(v)
		case error:
			if msg := v.Error(); len(msg) > maxQuoted {
				out[i] = clip(msg)
				continue
			}
			out[i] = v
		default:
			out[i] = a
		}
	}
	return out
}
