package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/store"
)

func TestParseRedisURL(t *testing.T) {
	tests := []struct {
		url          string
		addrs        string
		db           int
		user, pass   string
		master       string
		sentinelPass string
		cluster, tls bool
		dialTimeout  time.Duration
		protocol     int    // 0: RESP2, the gateway's default
		client       string // the go-redis client type OpenRedis makes
	}{
		{url: "redis://localhost:6379/0", addrs: "[localhost:6379]", client: "*redis.Client"},
		{url: "redis://:s3cret@10.0.0.5/2?dial_timeout=2s", addrs: "[10.0.0.5:6379]", db: 2, pass: "s3cret", dialTimeout: 2 * time.Second, client: "*redis.Client"},
		{url: "rediss://app:pw@cache.example:6380", addrs: "[cache.example:6380]", user: "app", pass: "pw", tls: true, client: "*redis.Client"},
		{url: "redis-sentinel://host:26379,host2:26379/mastername?db=0", addrs: "[host:26379 host2:26379]", master: "mastername", client: "*redis.Client"},
		{url: "redis-sentinel://:pw@s1,s2:26380/mymaster/3?sentinel_password=spw", addrs: "[s1:26379 s2:26380]", db: 3, pass: "pw", master: "mymaster", sentinelPass: "spw", client: "*redis.Client"},
		{url: "rediss-sentinel://s1:26379/m", addrs: "[s1:26379]", master: "m", tls: true, client: "*redis.Client"},
		{url: "redis-cluster://host1:7000,host2:7001", addrs: "[host1:7000 host2:7001]", cluster: true, client: "*redis.ClusterClient"},
		{url: "rediss-cluster://u:p@host1:7000?pool_size=20", addrs: "[host1:7000]", user: "u", pass: "p", cluster: true, tls: true, client: "*redis.ClusterClient"},
		{url: "redis://localhost:6379/0?protocol=3", addrs: "[localhost:6379]", protocol: 3, client: "*redis.Client"},
		{url: "redis-cluster://host1:7000?protocol=3", addrs: "[host1:7000]", cluster: true, protocol: 3, client: "*redis.ClusterClient"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			o, err := store.ParseRedisURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(o.Addrs); got != tc.addrs {
				t.Errorf("Addrs = %s, want %s", got, tc.addrs)
			}
			if o.DB != tc.db || o.Username != tc.user || o.Password != tc.pass || o.MasterName != tc.master ||
				o.SentinelPassword != tc.sentinelPass || o.IsClusterMode != tc.cluster || (o.TLSConfig != nil) != tc.tls ||
				o.DialTimeout != tc.dialTimeout || o.Protocol != max(tc.protocol, 2) {
				t.Errorf("options = %+v", o)
			}
			c, err := store.OpenRedis(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := fmt.Sprintf("%T", c); got != tc.client {
				t.Errorf("client %s, want %s", got, tc.client)
			}
			if tc.cluster {
				if _, ok := c.(*redis.ClusterClient); !ok {
					t.Error("cluster URL did not make a cluster client")
				}
			}
		})
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	for _, u := range []string{
		"localhost:6379",
		"http://:topsecret@localhost",
		"redis://:topsecret@localhost/x",
		"redis://:topsecret@localhost/0?no_such_option=1",
		"redis-sentinel://:topsecret@s1:26379",
		"redis-sentinel://:topsecret@s1:26379/m/x",
		"redis-cluster://:topsecret@h1:7000/0",
		"redis-cluster://:topsecret@h1:7000,,h2:7000",
		"redis-cluster://:topsecret@h1:7000?sentinel_password=x",
	} {
		_, err := store.ParseRedisURL(u)
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%s: error %q repeats the password", u, err)
		}
	}
}
