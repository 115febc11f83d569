package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/ratelimit"
)

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load("", envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:8080" || cfg.Verify.CodeLength != 6 || cfg.Verify.Lifetime != 10*time.Minute || cfg.Verify.MaxAttempts != 5 {
		t.Fatalf("defaults wrong: %+v", cfg)
	}
	if len(cfg.Limits.Policies) != len(ratelimit.DefaultPolicies()) || cfg.Limits.FailedChecks != 10 {
		t.Fatalf("limit defaults wrong: %+v", cfg.Limits)
	}
}

func TestYAMLThenEnv(t *testing.T) {
	path := writeFile(t, "v.yaml", "http:\n  addr: 127.0.0.1:9000\nverify:\n  code_length: 8\n  lifetime: 5m\nsms:\n  app_name: Contoso\n")
	secretFile := writeFile(t, "secret", "0123456789abcdef0123\n")
	cfg, err := Load(path, envFrom(map[string]string{
		"VERIGATE_VERIFY_CODE_LENGTH": "7",
		"VERIGATE_SECRET_FILE":        secretFile,
		"VERIGATE_API_KEYS":           "acme:k1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:9000" || cfg.Verify.Lifetime != 5*time.Minute || cfg.SMS.AppName != "Contoso" {
		t.Errorf("yaml not applied: %+v", cfg)
	}
	if cfg.Verify.CodeLength != 7 {
		t.Errorf("env must win over yaml: code_length %d", cfg.Verify.CodeLength)
	}
	if cfg.Secret != "0123456789abcdef0123" || cfg.APIKeys != "acme:k1" {
		t.Errorf("secrets not read: secret %d bytes, keys %q", len(cfg.Secret), cfg.APIKeys)
	}
}

func TestInvalidNamesTheKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"code length", "verify:\n  code_length: 3\n", nil, "verify.code_length"},
		{"unknown key", "verify:\n  colour: red\n", nil, "colour"},
		{"bad env int", "", map[string]string{"VERIGATE_VERIFY_MAX_ATTEMPTS": "five"}, "verify.max_attempts"},
		{"bad env duration", "", map[string]string{"VERIGATE_VERIFY_LIFETIME": "10"}, "VERIGATE_VERIFY_LIFETIME"},
		{"short secret", "", map[string]string{"VERIGATE_SECRET": "short"}, "secret"},
		{"region", "", map[string]string{"VERIGATE_VERIFY_DEFAULT_REGION": "germany"}, "verify.default_region"},
		{"policy", "limits:\n  policies:\n    - {name: x, scope: planet, limit: 1, window: 1m}\n", nil, "limits.policies[0]"},
		{"log level", "", map[string]string{"VERIGATE_LOG_LEVEL": "loud"}, "log.level"},
		{"public url", "", map[string]string{"VERIGATE_PUBLIC_URL": "example.com"}, "public_url"},
		{"prefix digits", "limits:\n  policies:\n    - {name: p, scope: prefix, limit: 1, window: 1m, prefix_digits: 20}\n", nil, "limits.policies[0]"},
		{"pumping ratio", "", map[string]string{"VERIGATE_LIMITS_SMS_PUMPING_MIN_RATIO": "1.5"}, "limits.sms_pumping.min_ratio"},
		{"pumping window", "limits:\n  sms_pumping:\n    window: 1m\n", nil, "limits.sms_pumping.window"},
		{"pumping maturity from a long lifetime", "verify:\n  lifetime: 2h\n", nil, "limits.sms_pumping.maturity"},
		{"high risk", "", map[string]string{"VERIGATE_ROUTE_GEO_HIGH_RISK": "Comoros"}, "route.geo.high_risk[0]"},
		{"short callback secret", "", map[string]string{"VERIGATE_CALLBACKS_SECRET": "short"}, "callbacks.secret"},
		{"callback secret not base64", "", map[string]string{"VERIGATE_CALLBACKS_SECRET": "whsec_not*base64"}, "callbacks.secret"},
		{"callback signatures", "callbacks:\n  signatures: hmac\n", nil, "callbacks.signatures"},
		{"callback lease", "callbacks:\n  timeout: 10s\n  lease: 5s\n", nil, "callbacks.lease"},
		{"permission", "route:\n  geo:\n    permissions:\n      - {channels: [fax], allow: [KM]}\n", nil, "route.geo.permissions[0].channels[0]"},
		{"directory ldap plain", "directory:\n  ldap:\n    url: ldap://dc1.contoso.example\n    base_dn: DC=contoso,DC=example\n", nil, "directory.ldap.start_tls"},
		{"directory ldap base", "", map[string]string{"VERIGATE_DIRECTORY_LDAP_URL": "ldaps://dc1.contoso.example"}, "directory.ldap.base_dn"},
		{"directory graph secret", "directory:\n  graph:\n    tenant_id: contoso.example\n    client_id: app\n", nil, "directory.graph.client_secret"},
		{"directory static format", "", map[string]string{"VERIGATE_DIRECTORY_STATIC_FILE": "people.txt"}, "directory.static.format"},
		{"directory order", "", map[string]string{"VERIGATE_DIRECTORY_ORDER": "graph"}, "directory.order[0]"},
		{"directory unknown key", "directory:\n  ldap:\n    password: x\n", nil, "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, "c.yaml", tt.yaml)
			}
			_, err := Load(path, envFrom(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	if _, err := Load(writeFile(t, "empty.yaml", ""), envFrom(nil)); err != nil {
		t.Fatal(err)
	}
}

func TestEnvSetsFieldsOfListEntries(t *testing.T) {
	path := writeFile(t, "sip.yaml", "sip:\n  trunks:\n    - name: pbx\n      address: 127.0.0.1:5070\n      username: verigate\n")
	cfg, err := Load(path, envFrom(map[string]string{"VERIGATE_SIP_TRUNKS_0_PASSWORD": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SIP.Trunks[0].Password != "s3cret" {
		t.Fatalf("trunk password from the environment not applied: %+v", cfg.SIP.Trunks[0])
	}
	if _, err := Load(path, envFrom(nil)); err == nil || !strings.Contains(err.Error(), "sip.trunks[0].password") {
		t.Fatalf("a trunk without its password must name the key, got %v", err)
	}
}

// TestRedisAutoPipeline: on by default; YAML and the environment turn it off.
func TestRedisAutoPipeline(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       bool
	}{
		{"default", "", nil, true},
		{"yaml off", "redis:\n  autopipeline: false\n", nil, false},
		{"env off", "", map[string]string{"VERIGATE_REDIS_AUTOPIPELINE": "false"}, false},
		{"env wins over yaml", "redis:\n  autopipeline: false\n", map[string]string{"VERIGATE_REDIS_AUTOPIPELINE": "true"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeFile(t, "v.yaml", tc.yaml)
			}
			cfg, err := Load(path, envFrom(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Redis.AutoPipeline != tc.want {
				t.Errorf("redis.autopipeline = %v, want %v", cfg.Redis.AutoPipeline, tc.want)
			}
		})
	}
}

func TestOptionalBool(t *testing.T) {
	none := envFrom(nil)
	cfg, err := Load("", none)
	if err != nil || cfg.Callbacks.AllowPrivateNetworks != nil {
		t.Fatalf("unset: %v, %v; want nil (not set)", cfg.Callbacks.AllowPrivateNetworks, err)
	}
	path := writeFile(t, "c.yaml", "callbacks:\n  allow_private_networks: true\n")
	if cfg, err = Load(path, none); err != nil || !cfg.Callbacks.PrivateNetworksAllowed() {
		t.Fatalf("yaml true: %v, %v", cfg.Callbacks.AllowPrivateNetworks, err)
	}
	cfg, err = Load(path, envFrom(map[string]string{"VERIGATE_CALLBACKS_ALLOW_PRIVATE_NETWORKS": "false"}))
	if err != nil || cfg.Callbacks.AllowPrivateNetworks == nil || *cfg.Callbacks.AllowPrivateNetworks {
		t.Fatalf("env false over yaml true: %v, %v; want set to false", cfg.Callbacks.AllowPrivateNetworks, err)
	}
	_, err = Load("", envFrom(map[string]string{"VERIGATE_CALLBACKS_ALLOW_PRIVATE_NETWORKS": "maybe"}))
	if err == nil || !strings.Contains(err.Error(), "callbacks.allow_private_networks") {
		t.Fatalf("bad value: %v, want an error naming the key", err)
	}
}

// TestCallbackSettings: the durable callbacks' settings from the file and
// the environment, the Standard Webhooks form of the secret accepted.
func TestCallbackSettings(t *testing.T) {
	path := writeFile(t, "c.yaml", "callbacks:\n  signatures: standard\n  max_age: 2h\n  max_backoff: 1m\n  lease: 20s\n")
	cfg, err := Load(path, envFrom(map[string]string{
		"VERIGATE_CALLBACKS_SECRET":        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"VERIGATE_CALLBACKS_MAX_ATTEMPTS":  "9",
		"VERIGATE_CALLBACKS_POLL_INTERVAL": "250ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Callbacks
	if c.Signatures != "standard" || c.MaxAge != 2*time.Hour || c.MaxBackoff != time.Minute || c.Lease != 20*time.Second || c.MaxAttempts != 9 || c.PollInterval != 250*time.Millisecond {
		t.Fatalf("callbacks %+v", c)
	}
}

// TestCapsFromYAMLAndEnv: the send caps, the destination permissions and
// the SMS-pumping watch are set from the file and the environment.
func TestCapsFromYAMLAndEnv(t *testing.T) {
	path := writeFile(t, "caps.yaml", `
limits:
  sms_pumping:
    window: 2h
    min_sends: 50
route:
  geo:
    high_risk: [default, JM]
    permissions:
      - {tenants: [bank], channels: [sms], allow: [KM, "+8816"]}
`)
	cfg, err := Load(path, envFrom(map[string]string{
		"VERIGATE_LIMITS_SMS_PUMPING_MIN_RATIO":  "0.1",
		"VERIGATE_LIMITS_SMS_PUMPING_BLOCK":      "6h",
		"VERIGATE_LIMITS_SMS_PUMPING_OFF":        "false",
		"VERIGATE_LIMITS_POLICIES_2_LIMIT":       "9000", // the tenant cap, by index
		"VERIGATE_ROUTE_GEO_PERMISSIONS_0_ALLOW": "KM",
	}))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Limits.SMSPumping
	if p.Window != 2*time.Hour || p.MinSends != 50 || p.MinRatio != 0.1 || p.Block != 6*time.Hour || p.FlushEvery != 5*time.Second {
		t.Errorf("sms_pumping %+v", p)
	}
	if tc := cfg.Limits.Policies[2]; tc.Name != "tenant" || tc.Limit != 9000 {
		t.Errorf("policies[2] %+v, want the tenant cap at 9000", tc)
	}
	if g := cfg.Route.Geo; len(g.HighRisk) != 2 || len(g.Permissions) != 1 || len(g.Permissions[0].Allow) != 1 {
		t.Errorf("route.geo %+v", g)
	}
}

// TestDirectorySettings: the directory's sources from the file, their
// secrets from the environment or a _FILE.
func TestDirectorySettings(t *testing.T) {
	path := writeFile(t, "d.yaml", `
directory:
  order: [static, ldap, graph]
  static:
    file: /etc/verigate/people.csv
  ldap:
    url: ldaps://dc1.contoso.example
    base_dn: OU=Staff,DC=contoso,DC=example
    bind_dn: CN=svc-verigate,OU=Service,DC=contoso,DC=example
    mobile_attributes: [mobile, otherMobile]
  graph:
    tenant_id: contoso.example
    client_id: 66666666-7777-8888-9999-000000000000
`)
	secret := writeFile(t, "graph-secret", "s3cret~value\n")
	cfg, err := Load(path, envFrom(map[string]string{
		"VERIGATE_DIRECTORY_LDAP_BIND_PASSWORD":       "bind-pw",
		"VERIGATE_DIRECTORY_GRAPH_CLIENT_SECRET_FILE": secret,
		"VERIGATE_DIRECTORY_LDAP_TIMEOUT":             "3s",
		"VERIGATE_DIRECTORY_LDAP_OFFICE_ATTRIBUTES":   "telephoneNumber, ipPhone",
	}))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Directory
	if d.Static.File != "/etc/verigate/people.csv" || d.LDAP.BindPassword != "bind-pw" || d.LDAP.Timeout != 3*time.Second ||
		len(d.LDAP.MobileAttributes) != 2 || len(d.LDAP.OfficeAttributes) != 2 || d.LDAP.OfficeAttributes[1] != "ipPhone" {
		t.Errorf("directory %+v", d)
	}
	if d.Graph.ClientSecret != "s3cret~value" {
		t.Errorf("graph client secret from _FILE: %d bytes", len(d.Graph.ClientSecret))
	}
	if !d.Enabled() || !d.LDAP.Enabled() || !d.Graph.Enabled() {
		t.Errorf("sources not enabled: %+v", d)
	}
}

// TestRADIUSSettings: the radius: section from YAML, its secrets and
// timeouts from the environment, and its errors named with the rest.
func TestRADIUSSettings(t *testing.T) {
	path := writeFile(t, "r.yaml", `radius:
  listen: 127.0.0.1:1812
  clients:
    - {address: 10.0.0.0/8, name: vpn}
  primary:
    mode: radius
    radius: {address: 127.0.0.1:18120}
directory:
  static: {file: people.csv}
`)
	cfg, err := Load(path, envFrom(map[string]string{
		"VERIGATE_RADIUS_CLIENTS_0_SECRET":      "from-the-environment",
		"VERIGATE_RADIUS_PRIMARY_RADIUS_SECRET": "upstream-secret",
		"VERIGATE_RADIUS_ANSWER_TIMEOUT":        "40s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.RADIUS
	if r.Clients[0].Secret != "from-the-environment" || r.Primary.RADIUS.Secret != "upstream-secret" || r.AnswerTimeout != 40*time.Second {
		t.Fatalf("radius settings: %+v", r)
	}
	// Without its secrets and without a directory: every key named at once.
	_, err = Load(writeFile(t, "bad.yaml", "radius:\n  listen: 127.0.0.1:1812\n  clients: [{address: 127.0.0.1}]\n  second_factor: push\n"), envFrom(nil))
	for _, key := range []string{"radius.clients[0].secret", "radius.second_factor", "radius.primary.mode: must be set", "radius.listen: needs a directory"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestAdminAddr(t *testing.T) {
	tests := []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"", false, true},
		{"127.0.0.1:6060", false, true},
		{"[::1]:6060", false, true},
		{"localhost:6060", false, true},
		{"0.0.0.0:6060", false, false},
		{":6060", false, false},
		{"10.0.0.5:6060", false, false},
		{"example.org:6060", false, false},
		{"0.0.0.0:6060", true, true},
		{"127.0.0.1", false, false}, // no port
	}
	for _, tt := range tests {
		cfg := Default()
		cfg.Admin = Admin{Addr: tt.addr, AllowRemote: tt.remote}
		err := cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("admin %q allow_remote=%v: err %v, want ok=%v", tt.addr, tt.remote, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "admin.addr") {
			t.Errorf("admin %q: error %v does not name admin.addr", tt.addr, err)
		}
	}
}
