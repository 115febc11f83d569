// Package rediskey holds what the Redis store and limiter share about key
// names: the escaping that keeps a value inside a Cluster hash tag.
package rediskey

import "strings"

var escaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

// Escape returns s with '%', '{' and '}' percent-encoded, so that a value
// placed between a key's braces (a tenant, a number, a user id) cannot
// close the hash tag early and move the key to another slot. Distinct
// values stay distinct.
func Escape(s string) string { return escaper.Replace(s) }
