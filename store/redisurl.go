package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// OpenRedis returns a client for the Redis that url names. It does not
// connect: the client dials on first use and again after every failure, so
// a gateway started while Redis is down serves as soon as it is back.
//
// URL forms (user and password are optional everywhere; every go-redis
// option in snake case, such as dial_timeout=2s or pool_size=50, may follow
// as a query parameter; the protocol is RESP2 unless protocol=3 is given):
//
//	redis://[user:pass@]host:6379[/db]                  one server
//	rediss://[user:pass@]host:6380[/db]                 one server over TLS
//	redis-sentinel://[user:pass@]h1:26379,h2:26379/mymaster[/db][?sentinel_username=..&sentinel_password=..]
//	rediss-sentinel://...                               the same, TLS to the servers
//	redis-cluster://[user:pass@]h1:7000,h2:7001         Redis Cluster (seed nodes)
//	rediss-cluster://...                                the same over TLS
//
// In the Sentinel form the user and password are the Redis servers';
// the sentinels' own go in sentinel_username and sentinel_password.
// Errors never repeat the URL, which may carry a password.
func OpenRedis(rawURL string) (redis.UniversalClient, error) {
	opt, err := ParseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(opt), nil
}

// ParseRedisURL turns a URL of a form OpenRedis accepts into go-redis
// universal options.
func ParseRedisURL(rawURL string) (*redis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, errors.New("redis url: want scheme://..., e.g. redis://localhost:6379/0")
	}
	tls := strings.HasPrefix(scheme, "rediss")
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", redact(err))
		}
		return universal(o, []string{o.Addr}), nil
	case "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster":
	default:
		return nil, fmt.Errorf("redis url: unknown scheme %q: want redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster", scheme)
	}

	// authority/path?query with a comma-separated host list, which
	// net/url does not parse: split it by hand, then let go-redis parse the
	// rest as a one-host URL.
	authority, pathQuery := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, pathQuery = rest[:i], rest[i:]
	}
	userinfo, hostlist := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostlist = authority[:i+1], authority[i+1:]
	}
	path, query, _ := strings.Cut(pathQuery, "?")
	hosts := strings.Split(hostlist, ",")
	for i, h := range hosts {
		if h == "" {
			return nil, errors.New("redis url: empty host in the host list")
		}
		if !strings.Contains(h, ":") || strings.HasSuffix(h, "]") {
			hosts[i] = h + ":" + map[bool]string{true: "26379", false: "6379"}[strings.Contains(scheme, "sentinel")]
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("redis url: query: %w", redact(err))
	}
	sentinelUser, sentinelPass := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")

	var master, db string
	parts := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	if strings.Contains(scheme, "sentinel") {
		if len(parts) == 0 || len(parts) > 2 {
			return nil, errors.New("redis url: the sentinel form needs the master name as its path: redis-sentinel://host:26379/mymaster[/db]")
		}
		master = parts[0]
		if len(parts) == 2 {
			db = parts[1]
		}
	} else if len(parts) > 0 {
		return nil, errors.New("redis url: the cluster form takes no path (Cluster has no databases)")
	}
	if db != "" {
		if _, err := strconv.Atoi(db); err != nil {
			return nil, fmt.Errorf("redis url: database %q is not a number", db)
		}
	}
	plain := "redis"
	if tls {
		plain = "rediss"
	}
	one := plain + "://" + userinfo + hosts[0] + "/" + db
	if enc := q.Encode(); enc != "" {
		one += "?" + enc
	}
	o, err := redis.ParseURL(one)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", redact(err))
	}
	u := universal(o, hosts)
	if master != "" {
		u.MasterName = master
		u.SentinelUsername, u.SentinelPassword = sentinelUser, sentinelPass
	} else {
		if sentinelUser != "" || sentinelPass != "" {
			return nil, errors.New("redis url: sentinel_username and sentinel_password belong to the sentinel form")
		}
		u.IsClusterMode = true
	}
	return u, nil
}

// universal carries the options go-redis parsed from a one-host URL over
// to universal options for addrs. The protocol is RESP2 unless the URL
// says protocol=3: the gateway uses nothing of RESP3's, and on RESP3
// go-redis looks for push notifications before every reply it reads.
func universal(o *redis.Options, addrs []string) *redis.UniversalOptions {
	if o.Protocol == 0 {
		o.Protocol = 2
	}
	return &redis.UniversalOptions{
		Addrs: addrs, DB: o.DB, ClientName: o.ClientName, Protocol: o.Protocol,
		Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		PoolFIFO:              o.PoolFIFO, PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
	}
}

// redact drops the URL that net/url puts into its errors.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// RedisHealth returns a readiness check for c: nil while Redis answers a
// PING within ctx (in Cluster, every master does), the failure otherwise.
// For /readyz.
func RedisHealth(c redis.UniversalClient) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var err error
		if cc, ok := c.(*redis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() })
		} else {
			err = c.Ping(ctx).Err()
		}
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}
}

// IsCluster reports whether c talks to a Redis Cluster, where one script
// may touch the keys of one slot only (store.RedisOptions.Cluster,
// ratelimit.RedisOptions.PerPolicy).
func IsCluster(c redis.UniversalClient) bool {
	_, ok := c.(*redis.ClusterClient)
	return ok
}

// MaxInFlightCommands bounds the commands AutoPipeline's client has
// written and not yet seen answered (per master on a Cluster), and as many
// again wait to be written: at a few hundred bytes each a few MB, and at
// the thousands of scripts per second a gateway runs, seconds of backlog.
const MaxInFlightCommands = 10000

// AutoPipeline returns a client on c that streams the commands of
// concurrent callers to Redis: go-redis's auto-pipelining in its
// full-duplex mode, one held connection with a writer and a reader apart,
// so the commands that arrive during a write go out together in the next
// one without waiting for earlier replies. Each caller still waits for its
// own reply, and each of our commands is one whole Lua script, so
// batching changes no result and no atomicity; it saves the per-command
// system calls on both ends, which dominate the cost of a script on
// loopback (docs/BENCHMARKS.md, "Redis"; it also measures this mode
// against go-redis's default, a batch at a time).
//
// At most MaxInFlightCommands are in flight and as many queued to be
// written; a caller that finds the queue full waits for room until its
// context ends: overload queues, it is not shed. A command once queued
// runs on the pipeliner's context, so the caller's deadline no longer cuts
// it short; the client's read timeout bounds its wait. When Redis goes
// away the stream fails and its commands answer errors (503 unavailable,
// nothing sent). Commands left unanswered by a broken connection may be
// written again on a new one (go-redis's retries), so a script can run
// twice, as with any retried command.
//
// Close the returned client before c: closing it flushes what is queued.
// Callers that need the type of c (IsCluster, RedisHealth) keep using c.
func AutoPipeline(c redis.UniversalClient) (redis.UniversalClient, error) {
	opt := redis.DefaultBlockingAutoPipelineOptions()
	opt.FullDuplex = true
	opt.FullDuplexWindow = MaxInFlightCommands
	var (
		ap  *redis.AutoPipeliner
		err error
	)
	switch c := c.(type) {
	case *redis.Client: // one server or Sentinel (the failover client)
		ap, err = c.AutoPipelineWithOptions(opt)
	case *redis.ClusterClient:
		ap, err = c.AutoPipelineWithOptions(opt)
	default:
		return nil, fmt.Errorf("redis: auto-pipelining is not available for %T", c)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: auto-pipelining: %w", err)
	}
	return ap, nil
}
