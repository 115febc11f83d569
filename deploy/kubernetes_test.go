package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/config"
)

// manifests are the objects of deploy/kubernetes, decoded strictly into
// the Kubernetes API types, by file.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
}

// loadManifest decodes every document of a manifest file strictly: an
// unknown or misspelt field, a wrong type or an unknown kind fails.
func loadManifest(t *testing.T, path string) manifests {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m manifests
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		if doc == nil {
			continue
		}
		// Back to YAML, one document: sigs.k8s.io/yaml converts to JSON
		// and decodes with the API types' JSON tags, refusing unknown and
		// duplicate fields.
		one, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := sigsyaml.Unmarshal(one, &tm); err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			m.deployments, obj = append(m.deployments, d), d
		case "v1 Service":
			s := &corev1.Service{}
			m.services, obj = append(m.services, s), s
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			m.pdbs, obj = append(m.pdbs, p), p
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			m.configMaps, obj = append(m.configMaps, c), c
		case "v1 Secret":
			s := &corev1.Secret{}
			m.secrets, obj = append(m.secrets, s), s
		default:
			t.Fatalf("%s: document %d: kind %q of %q is not one this test knows", path, i, tm.Kind, tm.APIVersion)
		}
		if err := sigsyaml.UnmarshalStrict(one, obj); err != nil {
			t.Fatalf("%s: document %d (%s): %v", path, i, tm.Kind, err)
		}
	}
	return m
}

// restricted evaluates a pod template against the restricted Pod
// Security Standard at its latest version and returns the reasons it
// falls short (none: admitted).
func restricted(t *testing.T, tpl corev1.PodTemplateSpec) []string {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	var reasons []string
	for _, r := range ev.EvaluatePod(lv, &tpl.ObjectMeta, &tpl.Spec) {
		if !r.Allowed {
			reasons = append(reasons, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	sort.Strings(reasons)
	return reasons
}

// TestKubernetesManifests decodes every manifest strictly and holds the
// workload to what the deployment needs: the restricted Pod Security
// Standard (the hostNetwork variant falls short on the host network and
// its ports only), the image's numeric user, the probes on the paths the
// API serves, a preStop sleep, selectors that select the pods, the
// configuration mounted where the arguments name it.
func TestKubernetesManifests(t *testing.T) {
	paths, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	uid, gid := dockerfileUser(t)
	wantShort := map[string][]string{
		"kubernetes/verigate.yaml":             nil,
		"kubernetes/verigate-hostnetwork.yaml": {"host namespaces", "hostPort"},
	}
	deployments := 0
	for _, p := range paths {
		m := loadManifest(t, p)
		for _, d := range m.deployments {
			deployments++
			want, ok := wantShort[p]
			if !ok {
				t.Errorf("%s: a Deployment this test has no expectation for", p)
				continue
			}
			var got []string
			for _, r := range restricted(t, d.Spec.Template) {
				got = append(got, strings.SplitN(r, ":", 2)[0])
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: restricted Pod Security Standard falls short on %q, want %q:\n%s",
					p, got, want, strings.Join(restricted(t, d.Spec.Template), "\n"))
			}
			checkPod(t, p, d, uid, gid)
		}
		for _, s := range m.services {
			if !selects(s.Spec.Selector, podLabels(t)) {
				t.Errorf("%s: Service %s selects %v, which no pod carries", p, s.Name, s.Spec.Selector)
			}
		}
		for _, b := range m.pdbs {
			sel, err := metav1.LabelSelectorAsMap(b.Spec.Selector)
			if err != nil || !selects(sel, podLabels(t)) {
				t.Errorf("%s: PodDisruptionBudget %s selects %v (%v), which no pod carries", p, b.Name, sel, err)
			}
			if b.Spec.MinAvailable == nil && b.Spec.MaxUnavailable == nil {
				t.Errorf("%s: PodDisruptionBudget %s allows every disruption", p, b.Name)
			}
		}
	}
	if deployments != len(wantShort) {
		t.Errorf("%d Deployments, want %d", deployments, len(wantShort))
	}
}

// podLabels are the labels of the pods of kubernetes/verigate.yaml.
func podLabels(t *testing.T) map[string]string {
	t.Helper()
	m := loadManifest(t, "kubernetes/verigate.yaml")
	if len(m.deployments) != 1 {
		t.Fatalf("kubernetes/verigate.yaml: %d Deployments, want 1", len(m.deployments))
	}
	return m.deployments[0].Spec.Template.Labels
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkPod holds one Deployment's pod to what the gateway needs.
func checkPod(t *testing.T, path string, d *appsv1.Deployment, uid, gid int64) {
	t.Helper()
	spec := d.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsMap(d.Spec.Selector)
	if err != nil || !selects(sel, d.Spec.Template.Labels) {
		t.Errorf("%s: the Deployment's selector %v does not select its pods (%v)", path, sel, err)
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uid || sc.RunAsGroup == nil || *sc.RunAsGroup != gid {
		t.Errorf("%s: the pod must run as the image's user %d:%d", path, uid, gid)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", path, len(spec.Containers))
	}
	c := spec.Containers[0]
	probe := func(name string, p *corev1.Probe, want string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want {
			t.Errorf("%s: %s probe must GET %s", path, name, want)
		}
	}
	probe("readiness", c.ReadinessProbe, api.RouteReady)
	probe("liveness", c.LivenessProbe, api.RouteHealth)
	// The image has no shell: the preStop hook must be the sleep action.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Exec != nil {
		t.Errorf("%s: preStop must be a sleep action (the image has no shell)", path)
	} else if grace := spec.TerminationGracePeriodSeconds; grace == nil || *grace < c.Lifecycle.PreStop.Sleep.Seconds+24 {
		// docs/DRAIN.md: drain_timeout's default 20 s, then up to 4 s of HTTP shutdown.
		t.Errorf("%s: terminationGracePeriodSeconds must leave the 20 s drain and 4 s HTTP shutdown after the preStop sleep", path)
	}
	if r := c.Resources; r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() || r.Requests.Cpu().IsZero() {
		t.Errorf("%s: memory request and limit and a CPU request are required", path)
	}
	if configPath(c.Args) == "" {
		t.Errorf("%s: args %q name no --config", path, c.Args)
	}
	if mountedConfig(c, spec, configPath(c.Args)) == "" {
		t.Errorf("%s: --config %s is not a key of a mounted ConfigMap", path, configPath(c.Args))
	}
	secretFrom := false
	for _, e := range c.EnvFrom {
		secretFrom = secretFrom || (e.SecretRef != nil && e.SecretRef.Name == "verigate")
	}
	if !secretFrom {
		t.Errorf("%s: the container must read the Secret verigate whole (envFrom)", path)
	}
}

// configPath is the value of --config in args.
func configPath(args []string) string {
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
	}
	return ""
}

// mountedConfig returns the ConfigMap key mounted at file, or "".
func mountedConfig(c corev1.Container, spec corev1.PodSpec, file string) string {
	for _, vm := range c.VolumeMounts {
		if filepath.Dir(file) != filepath.Clean(vm.MountPath) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				return filepath.Base(file)
			}
		}
	}
	return ""
}

// kubeConfig is one of the configurations of deploy/kubernetes: the
// ConfigMap's file and the Secret's variables.
type kubeConfig struct {
	file string // the configuration file, as the pod reads it
	env  map[string]string
}

func loadKubeConfig(t *testing.T, path string) kubeConfig {
	t.Helper()
	m := loadManifest(t, path)
	if len(m.configMaps) != 1 || len(m.secrets) != 1 {
		t.Fatalf("%s: %d ConfigMaps and %d Secrets, want one of each", path, len(m.configMaps), len(m.secrets))
	}
	cm, sec := m.configMaps[0], m.secrets[0]
	if cm.Name != "verigate" || sec.Name != "verigate" {
		t.Fatalf("%s: the ConfigMap and Secret must be called verigate, as the Deployment names them", path)
	}
	file, ok := cm.Data["verigate.yaml"]
	if !ok {
		t.Fatalf("%s: the ConfigMap has no verigate.yaml", path)
	}
	env := map[string]string{}
	for k, v := range sec.StringData {
		env[k] = v
	}
	for k, v := range sec.Data {
		env[k] = string(v)
	}
	return kubeConfig{file: file, env: env}
}

// TestKubernetesConfigs loads each configuration as the gateway would,
// from the ConfigMap's file and the Secret's variables, and checks that it
// configures the providers its name promises; and that the SIP Service
// lists exactly the RTP ports the configurations use.
func TestKubernetesConfigs(t *testing.T) {
	svc := loadManifest(t, "kubernetes/sip-service.yaml").services
	if len(svc) != 1 {
		t.Fatalf("kubernetes/sip-service.yaml: %d Services, want 1", len(svc))
	}
	var udp []int32
	for _, p := range svc[0].Spec.Ports {
		if p.Protocol == corev1.ProtocolUDP && p.Port != 5060 {
			udp = append(udp, p.Port)
		}
	}
	for _, tc := range []struct {
		path          string
		twilio, trunk bool
	}{
		{"kubernetes/config-twilio.yaml", true, false},
		{"kubernetes/config-pbx.yaml", false, true},
		{"kubernetes/config-twilio-pbx.yaml", true, true},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			kc := loadKubeConfig(t, tc.path)
			file := filepath.Join(t.TempDir(), "verigate.yaml")
			if err := os.WriteFile(file, []byte(kc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(file, func(k string) (string, bool) { v, ok := kc.env[k]; return v, ok })
			if err != nil {
				t.Fatalf("%s: %v", tc.path, err)
			}
			if got := cfg.Twilio.Configured(); got != tc.twilio {
				t.Errorf("Twilio configured: %v, want %v", got, tc.twilio)
			}
			if got := len(cfg.SIP.Trunks) > 0; got != tc.trunk {
				t.Errorf("trunk configured: %v, want %v", got, tc.trunk)
			}
			if cfg.Redis.URL == "" {
				t.Error("no VERIGATE_REDIS_URL: replicas would not share state")
			}
			if tc.trunk {
				var lo, hi int32
				if _, err := fmt.Sscanf(cfg.SIP.RTPPorts, "%d-%d", &lo, &hi); err != nil {
					t.Fatalf("sip.rtp_ports %q: %v", cfg.SIP.RTPPorts, err)
				}
				var want []int32
				for p := lo; p <= hi; p++ {
					want = append(want, p)
				}
				if !slices.Equal(udp, want) {
					t.Errorf("sip-service.yaml lists RTP ports %v, the configuration uses %s", udp, cfg.SIP.RTPPorts)
				}
			}
		})
	}
}
