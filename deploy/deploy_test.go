// Package deploy holds the deployment files (Dockerfile, compose file,
// Kubernetes manifests, systemd unit, sample configuration and
// environment); its tests hold them to what they promise: the manifests
// decode strictly into the Kubernetes API types and the pod meets the
// restricted Pod Security Standard, docker-compose renders the compose
// file, systemd verifies the unit and scores it 2.0 or better, and every
// deployment starts the built gateway, with the arguments, configuration
// and environment it would get, to a 200 on /readyz; the sipp phone for
// bench sip (sipp/uas_press_pound.xml) takes a retransmitted INVITE.
package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/verigate/verigate/config"
)

func TestExampleConfigLoads(t *testing.T) {
	if _, err := config.Load("verigate.example.yaml", func(string) (string, bool) { return "", false }); err != nil {
		t.Fatalf("deploy/verigate.example.yaml: %v", err)
	}
}

// TestExamplesLoad keeps every configuration under examples/ loadable
// (cmd/verigate's tests run them with serve --dev).
func TestExamplesLoad(t *testing.T) {
	paths, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, p := range paths {
		if _, err := config.Load(p, func(string) (string, bool) { return "", false }); err != nil {
			t.Errorf("deploy/%s: %v", p, err)
		}
	}
}

// dockerfileUser is the image's USER, which must be numeric: kubelet
// proves runAsNonRoot only from a number.
func dockerfileUser(t *testing.T) (uid, gid int64) {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER\s+(\S+)\s*$`).FindAllStringSubmatch(string(data), -1)
	if len(m) != 1 {
		t.Fatalf("Dockerfile: %d USER lines, want 1", len(m))
	}
	u, g, _ := strings.Cut(m[0][1], ":")
	uid, err1 := strconv.ParseInt(u, 10, 64)
	gid, err2 := strconv.ParseInt(g, 10, 64)
	if err1 != nil || err2 != nil || uid == 0 || gid == 0 {
		t.Fatalf("Dockerfile: USER %s must be a numeric non-root uid:gid", m[0][1])
	}
	return uid, gid
}

// dockerfileCommand is the image's ENTRYPOINT and CMD, in exec form.
func dockerfileCommand(t *testing.T) (entrypoint, cmd []string) {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	get := func(kw string) []string {
		m := regexp.MustCompile(`(?m)^` + kw + `\s+(\[.*\])\s*$`).FindStringSubmatch(string(data))
		if m == nil {
			t.Fatalf("Dockerfile: no %s in exec form", kw)
		}
		var v []string
		if err := json.Unmarshal([]byte(m[1]), &v); err != nil {
			t.Fatalf("Dockerfile: %s: %v", kw, err)
		}
		return v
	}
	return get("ENTRYPOINT"), get("CMD")
}

// composeService is the part of `docker-compose config`'s output the
// tests read.
type composeService struct {
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	User        string            `yaml:"user"`
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
	Volumes     []string          `yaml:"volumes"`
}

// renderCompose renders docker-compose.yml with `docker-compose config`,
// its env_file (.env) being the committed verigate.env.example, as an
// operator's copy would be.
func renderCompose(t *testing.T) composeService {
	t.Helper()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatal("docker-compose is not installed (Debian: docker-compose; scripts/test.sh installs it)")
	}
	dir := t.TempDir()
	for src, dst := range map[string]string{"docker-compose.yml": "docker-compose.yml", "verigate.env.example": ".env"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "--project-directory", dir, "-f", filepath.Join(dir, "docker-compose.yml"), "config")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, stderr.String())
	}
	var doc struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("docker-compose config's output: %v\n%s", err, out)
	}
	svc, ok := doc.Services["verigate"]
	if !ok {
		t.Fatalf("no service verigate in:\n%s", out)
	}
	// Paths on the host are rendered absolute, under dir: back to this
	// directory, where the files are.
	for i, v := range svc.Volumes {
		svc.Volumes[i] = strings.Replace(v, dir+string(filepath.Separator), "", 1)
	}
	return svc
}

// TestCompose renders the compose file with its env_file and starts the
// gateway as the container would: the image's command, the rendered
// environment (env_file included), the mounted configuration.
func TestCompose(t *testing.T) {
	svc := renderCompose(t)
	uid, gid := dockerfileUser(t)
	if svc.User != strconv.FormatInt(uid, 10)+":"+strconv.FormatInt(gid, 10) {
		t.Errorf("compose user %q, want the image's %d:%d", svc.User, uid, gid)
	}
	if !svc.ReadOnly || len(svc.CapDrop) != 1 || svc.CapDrop[0] != "ALL" {
		t.Errorf("compose: read_only %v, cap_drop %v; want true and [ALL]", svc.ReadOnly, svc.CapDrop)
	}
	for _, k := range []string{"VERIGATE_SECRET", "VERIGATE_API_KEYS", "VERIGATE_TWILIO_ACCOUNT_SID", "VERIGATE_REDIS_URL"} {
		if svc.Environment[k] == "" {
			t.Errorf("compose: %s is not in the rendered environment", k)
		}
	}
	_, args := dockerfileCommand(t)
	if len(svc.Command) > 0 {
		args = svc.Command
	}
	file := configPath(args)
	var host string
	for _, v := range svc.Volumes {
		src, rest, _ := strings.Cut(v, ":")
		if dst, _, _ := strings.Cut(rest, ":"); dst == file {
			host = src
		}
	}
	if host == "" {
		t.Fatalf("compose mounts nothing at %s (volumes %q)", file, svc.Volumes)
	}
	startShipped(t, shipped{args: args, config: host, env: svc.Environment})
}

// TestKubernetesStarts starts the gateway as the pod of
// kubernetes/verigate.yaml would run with each configuration: the
// container's arguments, the ConfigMap's file where the volume mounts it,
// the Secret's variables and the container's own.
func TestKubernetesStarts(t *testing.T) {
	m := loadManifest(t, "kubernetes/verigate.yaml")
	c := m.deployments[0].Spec.Template.Spec.Containers[0]
	entrypoint, _ := dockerfileCommand(t)
	if len(c.Command) > 0 && (len(c.Command) != len(entrypoint) || c.Command[0] != entrypoint[0]) {
		t.Fatalf("the container's command %q is not the image's %q", c.Command, entrypoint)
	}
	for _, path := range []string{"kubernetes/config-twilio.yaml", "kubernetes/config-pbx.yaml", "kubernetes/config-twilio-pbx.yaml"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			kc := loadKubeConfig(t, path)
			file := filepath.Join(t.TempDir(), mountedConfig(c, m.deployments[0].Spec.Template.Spec, configPath(c.Args)))
			if err := os.WriteFile(file, []byte(kc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			env := kc.env
			for _, e := range c.Env {
				if e.ValueFrom != nil {
					t.Fatalf("env %s: valueFrom is not followed by this test", e.Name)
				}
				env[e.Name] = e.Value
			}
			startShipped(t, shipped{args: c.Args, config: file, env: env})
		})
	}
}

// unitValues returns the values of key in the unit's [Service] section.
func unitValues(t *testing.T, unit, key string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestSystemdUnit verifies the unit with systemd-analyze (the binary it
// names being the one built here), asserts its exposure score is 2.0 or
// better, and starts the gateway as the unit would: ExecStart's arguments,
// the configuration example where it names /etc/verigate/verigate.yaml,
// the environment file's example as its EnvironmentFile.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("systemd/verigate.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	exec1 := unitValues(t, unit, "ExecStart")
	if len(exec1) != 1 {
		t.Fatalf("%d ExecStart lines, want 1", len(exec1))
	}
	argv := strings.Fields(exec1[0])

	// verify: the unit as installed, with ExecStart naming a binary that exists.
	dir := t.TempDir()
	local := filepath.Join(dir, "verigate.service")
	if err := os.WriteFile(local, []byte(strings.Replace(unit, "ExecStart="+argv[0], "ExecStart="+binary, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", local).CombinedOutput()
	// systemd-analyze also reports on the machine's other units: only
	// lines about this one count.
	var ours []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "verigate.service") {
			ours = append(ours, line)
		}
	}
	if err != nil || len(ours) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(ours, "\n"))
	}

	out, err = exec.Command("systemd-analyze", "security", "--offline=true", "systemd/verigate.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for verigate\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || score > 2.0 {
		t.Errorf("systemd-analyze security scores the unit %s, want 2.0 or better:\n%s", m[1], out)
	}

	envFiles := unitValues(t, unit, "EnvironmentFile")
	if len(envFiles) != 1 {
		t.Fatalf("%d EnvironmentFile lines, want 1", len(envFiles))
	}
	if filepath.Base(envFiles[0]) != "verigate.env" || configPath(argv[1:]) != "/etc/verigate/verigate.yaml" {
		t.Fatalf("the unit reads %s and %s; the install notes (and this test) copy the examples to /etc/verigate/verigate.env and verigate.yaml",
			envFiles[0], configPath(argv[1:]))
	}
	startShipped(t, shipped{args: argv[1:], config: "verigate.example.yaml", env: readEnvFile(t, "verigate.env.example")})
}
