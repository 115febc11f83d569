// Package store keeps verification state: an in-memory implementation of
// verify.Store for development and single-node use, and a Redis one for
// production. Both pass the same contract tests (internal/storetest).
package store
