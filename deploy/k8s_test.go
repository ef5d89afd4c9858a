package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const k8sDir = "k8s"

// strictJSON decodes data into v, failing on a field v does not have.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the object")
	}
	return nil
}

// strictYAML converts one YAML document to JSON and decodes it strictly.
func strictYAML(data []byte, v any) error {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	return strictJSON(j, v)
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// k8sObjects are the manifests of deploy/k8s, decoded with the Kubernetes API types.
type k8sObjects struct {
	namespace    string
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	pdbs         []*policyv1.PodDisruptionBudget
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	namespaces   []*corev1.Namespace
	files        map[string]bool // manifest files
}

// kustomization is the part of kustomize's Kustomization this deployment uses.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

func loadK8s(t *testing.T, dir string) *k8sObjects {
	t.Helper()
	objs := &k8sObjects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, files: map[string]bool{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(f)
		if base == "kustomization.yaml" {
			var k kustomization
			if err := strictYAML(data, &k); err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			checkKustomization(t, dir, f, &k)
			objs.namespace = k.Namespace
			continue
		}
		objs.files[base] = true
		for i, doc := range docSeparator.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", f, i+1)
			var tm metav1.TypeMeta
			j, err := yaml.YAMLToJSON([]byte(doc))
			if err == nil {
				err = json.Unmarshal(j, &tm)
			}
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				o := &appsv1.Deployment{}
				objs.deployments, obj = append(objs.deployments, o), o
			case "apps/v1 StatefulSet":
				o := &appsv1.StatefulSet{}
				objs.statefulSets, obj = append(objs.statefulSets, o), o
			case "v1 Service":
				o := &corev1.Service{}
				objs.services, obj = append(objs.services, o), o
			case "autoscaling/v2 HorizontalPodAutoscaler":
				o := &autoscalingv2.HorizontalPodAutoscaler{}
				objs.hpas, obj = append(objs.hpas, o), o
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				objs.pdbs, obj = append(objs.pdbs, o), o
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Secret":
				obj = &corev1.Secret{}
			case "v1 Namespace":
				o := &corev1.Namespace{}
				objs.namespaces, obj = append(objs.namespaces, o), o
			default:
				t.Errorf("%s: unexpected kind %q of %q", where, tm.Kind, tm.APIVersion)
				continue
			}
			if err := strictJSON(j, obj); err != nil {
				t.Errorf("%s (%s): %v", where, tm.Kind, err)
				continue
			}
			switch o := obj.(type) {
			case *corev1.ConfigMap:
				objs.configMaps[o.Name] = o
			case *corev1.Secret:
				objs.secrets[o.Name] = o
			}
		}
	}
	return objs
}

// stripComments drops YAML comment lines, to tell an empty document from one with content.
func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func checkKustomization(t *testing.T, dir, f string, k *kustomization) {
	t.Helper()
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s: apiVersion/kind %q/%q, want kustomize.config.k8s.io/v1beta1 Kustomization", f, k.APIVersion, k.Kind)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, file := range files {
		if b := filepath.Base(file); b != "kustomization.yaml" && !contains(k.Resources, b) {
			t.Errorf("%s: resources do not list %s", f, b)
		}
	}
	seen := map[string]bool{}
	for _, r := range k.Resources {
		if seen[r] {
			t.Errorf("%s: %s listed twice", f, r)
		}
		seen[r] = true
		if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
			t.Errorf("%s: resource %s: %v", f, r, err)
		}
	}
}

// workload is a Deployment or StatefulSet seen through what the checks need.
type workload struct {
	kind, name string
	replicas   *int32
	selector   *metav1.LabelSelector
	pod        *corev1.PodTemplateSpec
	sts        *appsv1.StatefulSet
}

func (o *k8sObjects) workloads() []workload {
	var ws []workload
	for _, d := range o.deployments {
		ws = append(ws, workload{"Deployment", d.Name, d.Spec.Replicas, d.Spec.Selector, &d.Spec.Template, nil})
	}
	for _, s := range o.statefulSets {
		ws = append(ws, workload{"StatefulSet", s.Name, s.Spec.Replicas, s.Spec.Selector, &s.Spec.Template, s})
	}
	return ws
}

// matches says whether a selector's matchLabels select labels.
func matches(sel map[string]string, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// k8sContainer is a lectern container of a workload with its configuration.
type k8sContainer struct {
	w   workload
	c   *corev1.Container
	cfg *config
	// files are the files the container sees from ConfigMap volumes: path -> content.
	files map[string]string
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// containerEnv resolves a container's environment as the kubelet would: values from the Secret and
// ConfigMap keys they name (which must exist), fieldRefs as $(fieldPath) markers, and $(VAR)
// references to earlier variables expanded.
func (o *k8sObjects) containerEnv(t *testing.T, where string, c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("%s: env %s given twice", where, e.Name)
		}
		v := e.Value
		if e.ValueFrom != nil {
			switch vf := e.ValueFrom; {
			case vf.SecretKeyRef != nil:
				s, ok := o.secrets[vf.SecretKeyRef.Name]
				if !ok {
					t.Errorf("%s: env %s: no Secret %q", where, e.Name, vf.SecretKeyRef.Name)
					break
				}
				val, ok := s.StringData[vf.SecretKeyRef.Key]
				if !ok {
					t.Errorf("%s: env %s: Secret %s has no key %q", where, e.Name, s.Name, vf.SecretKeyRef.Key)
				}
				v = val
			case vf.ConfigMapKeyRef != nil:
				cm, ok := o.configMaps[vf.ConfigMapKeyRef.Name]
				if !ok {
					t.Errorf("%s: env %s: no ConfigMap %q", where, e.Name, vf.ConfigMapKeyRef.Name)
					break
				}
				val, ok := cm.Data[vf.ConfigMapKeyRef.Key]
				if !ok {
					t.Errorf("%s: env %s: ConfigMap %s has no key %q", where, e.Name, cm.Name, vf.ConfigMapKeyRef.Key)
				}
				v = val
			case vf.FieldRef != nil:
				v = "$(" + vf.FieldRef.FieldPath + ")"
			default:
				t.Errorf("%s: env %s: unsupported valueFrom", where, e.Name)
			}
		}
		v = envRef.ReplaceAllStringFunc(v, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			if val, ok := env[name]; ok {
				return val
			}
			t.Errorf("%s: env %s refers to $(%s), which is not defined before it", where, e.Name, name)
			return ref
		})
		env[e.Name] = v
	}
	if len(c.EnvFrom) > 0 {
		t.Errorf("%s: envFrom hands a role every key; name each variable so the test can check it is the role's", where)
	}
	return env
}

// portNumber resolves a probe's or Service's port (name or number) among a container's ports.
func portNumber(c *corev1.Container, p intstr.IntOrString) (int, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return int(cp.ContainerPort), true
		}
	}
	return 0, false
}

// images the manifests may use, by the roles that may run on them: ingest validates uploads with
// ffprobe and workers run ffmpeg, so both need the worker image.
var imageRoles = map[string][]string{
	"lectern":        {"origin", "edge", "router"},
	"lectern-worker": {"ingest", "worker"},
}

func TestKubernetesManifests(t *testing.T) {
	o := loadK8s(t, k8sDir)
	if t.Failed() {
		t.FailNow()
	}
	if o.namespace == "" || len(o.namespaces) != 1 || o.namespaces[0].Name != o.namespace {
		t.Errorf("kustomization namespace %q: want it set and created by namespace.yaml", o.namespace)
	}
	var containers []*k8sContainer
	var cfgs []*config
	rolesSeen := map[string]string{}
	for _, w := range o.workloads() {
		where := w.kind + "/" + w.name
		if w.selector == nil || !matches(w.selector.MatchLabels, w.pod.Labels) {
			t.Errorf("%s: selector does not select its pod template's labels", where)
		}
		spec := &w.pod.Spec
		sc := spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod must run as non-root (securityContext.runAsNonRoot)", where)
		}
		volumes := map[string]*corev1.Volume{}
		for i := range spec.Volumes {
			volumes[spec.Volumes[i].Name] = &spec.Volumes[i]
		}
		claims := map[string]*corev1.PersistentVolumeClaim{}
		if w.sts != nil {
			for i := range w.sts.Spec.VolumeClaimTemplates {
				claims[w.sts.Spec.VolumeClaimTemplates[i].Name] = &w.sts.Spec.VolumeClaimTemplates[i]
			}
		}
		if len(spec.Containers) != 1 {
			t.Errorf("%s: %d containers, want one lectern container", where, len(spec.Containers))
		}
		for i := range spec.Containers {
			c := &spec.Containers[i]
			cw := fmt.Sprintf("%s/%s container %s", k8sDir, where, c.Name)
			if len(c.Command) > 0 {
				t.Errorf("%s: command overrides the image's lectern entrypoint; give the role in args", cw)
			}
			cfg := checkContainer(t, container{where: cw, args: c.Args, env: o.containerEnv(t, cw, c)})
			if cfg == nil {
				continue
			}
			cfgs = append(cfgs, cfg)
			rolesSeen[cfg.role.name] = where
			if allowed, ok := imageRoles[c.Image]; !ok || !contains(allowed, cfg.role.name) {
				t.Errorf("%s: lectern %s on image %q (want one of the images that carries what it needs: %v)", cw, cfg.role.name, c.Image, imageRoles)
			}
			listen := cfg.listenPort(t)
			if len(c.Ports) != 1 || int(c.Ports[0].ContainerPort) != listen {
				t.Errorf("%s: containerPorts %v, want exactly the --listen port %d", cw, c.Ports, listen)
			}
			if w.pod.Annotations["prometheus.io/port"] != strconv.Itoa(listen) {
				t.Errorf("%s: prometheus.io/port %q, want %d (/metrics is on --listen)", cw, w.pod.Annotations["prometheus.io/port"], listen)
			}
			for _, p := range []struct {
				kind, path string
				probe      *corev1.Probe
			}{{"readinessProbe", "/readyz", c.ReadinessProbe}, {"livenessProbe", "/healthz", c.LivenessProbe}} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s: no %s httpGet", cw, p.kind)
					continue
				}
				if p.probe.HTTPGet.Path != p.path {
					t.Errorf("%s: %s path %q, want %s", cw, p.kind, p.probe.HTTPGet.Path, p.path)
				}
				if n, ok := portNumber(c, p.probe.HTTPGet.Port); !ok || n != listen {
					t.Errorf("%s: %s port %s is not the --listen port %d", cw, p.kind, p.probe.HTTPGet.Port.String(), listen)
				}
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[res]
				lim, okLim := c.Resources.Limits[res]
				if !okReq || !okLim {
					t.Errorf("%s: %s needs both a request and a limit", cw, res)
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s: %s request %s above its limit %s", cw, res, req.String(), lim.String())
				}
			}
			kc := &k8sContainer{w: w, c: c, cfg: cfg, files: map[string]string{}}
			mounts := map[string]string{} // mountPath -> volume name
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = m.Name
				v, isVol := volumes[m.Name]
				_, isClaim := claims[m.Name]
				if !isVol && !isClaim {
					t.Errorf("%s: volumeMount %s names no volume or volumeClaimTemplate", cw, m.Name)
					continue
				}
				if isVol && v.ConfigMap != nil {
					cm, ok := o.configMaps[v.ConfigMap.Name]
					if !ok {
						t.Errorf("%s: volume %s: no ConfigMap %q", cw, m.Name, v.ConfigMap.Name)
						continue
					}
					for key, val := range cm.Data {
						kc.files[path.Join(m.MountPath, key)] = val
					}
				}
			}
			if f := cfg.vals["regions"]; f != "" {
				data, ok := kc.files[f]
				if !ok {
					t.Errorf("%s: --regions %s is no file of a ConfigMap volume", cw, f)
				} else {
					checkRegionMap(t, cw+" "+f, []byte(data))
				}
			}
			if d := cfg.vals["disk-dir"]; d != "" {
				claim, ok := claims[mounts[d]]
				if !ok {
					t.Errorf("%s: --disk-dir %s is not a volumeClaimTemplate's mount: the cache would not outlive the pod", cw, d)
				} else if size, err := parseBytes(cfg.vals["disk-size"]); err != nil {
					t.Errorf("%s: --disk-size: %v", cw, err)
				} else if q := claim.Spec.Resources.Requests[corev1.ResourceStorage]; size >= q.Value() {
					t.Errorf("%s: --disk-size %s does not fit its volume of %s", cw, cfg.vals["disk-size"], q.String())
				}
			}
			containers = append(containers, kc)
		}
	}
	for _, r := range []string{"ingest", "worker", "origin", "edge", "router"} {
		if _, ok := rolesSeen[r]; !ok {
			t.Errorf("no workload runs lectern %s", r)
		}
	}
	checkSecretsAgree(t, cfgs)
	o.checkServices(t, containers)
	o.checkScaling(t)
	o.checkEdges(t, containers)
	o.checkURLs(t, containers)
}

// podsOf returns the lectern containers whose pods a selector selects.
func podsOf(sel map[string]string, cs []*k8sContainer) []*k8sContainer {
	var out []*k8sContainer
	for _, c := range cs {
		if matches(sel, c.w.pod.Labels) {
			out = append(out, c)
		}
	}
	return out
}

func (o *k8sObjects) checkServices(t *testing.T, cs []*k8sContainer) {
	for _, s := range o.services {
		pods := podsOf(s.Spec.Selector, cs)
		if len(pods) == 0 {
			t.Errorf("Service/%s: selector %v selects no lectern pod", s.Name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			for _, pod := range pods {
				if n, ok := portNumber(pod.c, p.TargetPort); !ok || n != pod.cfg.listenPort(t) {
					t.Errorf("Service/%s port %d: targetPort %s is not %s/%s's --listen port", s.Name, p.Port, p.TargetPort.String(), pod.w.kind, pod.w.name)
				}
			}
		}
	}
}

func (o *k8sObjects) checkScaling(t *testing.T) {
	scaled := map[string]bool{}
	for _, h := range o.hpas {
		ref := h.Spec.ScaleTargetRef
		found := false
		for _, w := range o.workloads() {
			found = found || (w.kind == ref.Kind && w.name == ref.Name && ref.APIVersion == "apps/v1")
		}
		if !found {
			t.Errorf("HorizontalPodAutoscaler/%s: scaleTargetRef %s %s/%s names no workload", h.Name, ref.APIVersion, ref.Kind, ref.Name)
		}
		scaled[ref.Kind+"/"+ref.Name] = true
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("HorizontalPodAutoscaler/%s: want 1 <= minReplicas <= maxReplicas", h.Name)
		}
		if len(h.Spec.Metrics) == 0 {
			t.Errorf("HorizontalPodAutoscaler/%s: no metrics", h.Name)
		}
	}
	for _, w := range o.workloads() {
		role := ""
		if len(w.pod.Spec.Containers) > 0 && len(w.pod.Spec.Containers[0].Args) > 0 {
			role = w.pod.Spec.Containers[0].Args[0]
		}
		if (role == "worker" || role == "edge") && !scaled[w.kind+"/"+w.name] {
			t.Errorf("%s/%s (lectern %s): no HorizontalPodAutoscaler", w.kind, w.name, role)
		}
		covered := false
		for _, p := range o.pdbs {
			covered = covered || (p.Spec.Selector != nil && matches(p.Spec.Selector.MatchLabels, w.pod.Labels))
		}
		if !covered {
			t.Errorf("%s/%s: no PodDisruptionBudget selects its pods", w.kind, w.name)
		}
	}
	for _, p := range o.pdbs {
		if p.Spec.Selector == nil || len(podsOfWorkloads(o, p.Spec.Selector.MatchLabels)) == 0 {
			t.Errorf("PodDisruptionBudget/%s selects no pods", p.Name)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget/%s: give one of minAvailable and maxUnavailable", p.Name)
		}
	}
}

func podsOfWorkloads(o *k8sObjects, sel map[string]string) []workload {
	var out []workload
	for _, w := range o.workloads() {
		if matches(sel, w.pod.Labels) {
			out = append(out, w)
		}
	}
	return out
}

func (o *k8sObjects) hpaMax(kind, name string) int32 {
	for _, h := range o.hpas {
		if h.Spec.ScaleTargetRef.Kind == kind && h.Spec.ScaleTargetRef.Name == name {
			return h.Spec.MaxReplicas
		}
	}
	return 0
}

// podHost is the DNS name of a StatefulSet's pod through its governing Service.
func (o *k8sObjects) podHost(sts *appsv1.StatefulSet, ordinal int) string {
	return fmt.Sprintf("%s-%d.%s.%s.svc.cluster.local", sts.Name, ordinal, sts.Spec.ServiceName, o.namespace)
}

// checkEdges checks each edge StatefulSet against the region map: every pod it may run (up to its
// autoscaler's maximum) is an edge of its --region at its --listen port, and its --self is its own URL.
func (o *k8sObjects) checkEdges(t *testing.T, cs []*k8sContainer) {
	for _, c := range cs {
		if c.cfg.role.name != "edge" {
			continue
		}
		where := c.cfg.c.where
		sts := c.w.sts
		if sts == nil {
			t.Errorf("%s: edges run as a StatefulSet (stable names for the region map, a disk per pod)", where)
			continue
		}
		var governing *corev1.Service
		for _, s := range o.services {
			if s.Name == sts.Spec.ServiceName {
				governing = s
			}
		}
		if governing == nil || governing.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("%s: serviceName %q must be a headless Service", where, sts.Spec.ServiceName)
		}
		m := checkRegionMap(t, where, []byte(c.files[c.cfg.vals["regions"]]))
		if m == nil {
			continue
		}
		edges := regionEdges(m, c.cfg.vals["region"])
		if edges == nil {
			t.Errorf("%s: --region %q is not in the region map", where, c.cfg.vals["region"])
			continue
		}
		pods := max(o.hpaMax("StatefulSet", sts.Name), ptrOr(sts.Spec.Replicas, 1))
		listen := c.cfg.listenPort(t)
		for i := 0; i < int(pods); i++ {
			want := fmt.Sprintf("http://%s:%d", o.podHost(sts, i), listen)
			if !contains(edges, want) {
				t.Errorf("%s: pod %d's URL %s is not an edge of region %s in the region map", where, i, want, c.cfg.vals["region"])
			}
			self := strings.ReplaceAll(c.cfg.vals["self"], "$(metadata.name)", fmt.Sprintf("%s-%d", sts.Name, i))
			if self != want {
				t.Errorf("%s: pod %d's --self is %s, want %s", where, i, self, want)
			}
		}
		if len(edges) != int(pods) {
			t.Errorf("%s: the region map lists %d edges in %s, the StatefulSet may run %d", where, len(edges), c.cfg.vals["region"], pods)
		}
	}
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// resolve finds the lectern container behind a cluster URL (a Service, or a StatefulSet pod through
// its headless Service) and the port it reaches there.
func (o *k8sObjects) resolve(t *testing.T, raw string, cs []*k8sContainer) (*k8sContainer, int, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return nil, 0, fmt.Errorf("%q: want http://HOST:PORT", raw)
	}
	port, _ := strconv.Atoi(u.Port())
	host := strings.TrimSuffix(u.Hostname(), ".svc.cluster.local")
	host = strings.TrimSuffix(host, "."+o.namespace)
	labels := strings.Split(host, ".")
	svcName := labels[len(labels)-1]
	for _, s := range o.services {
		if s.Name != svcName {
			continue
		}
		for _, p := range s.Spec.Ports {
			if int(p.Port) != port {
				continue
			}
			for _, pod := range podsOf(s.Spec.Selector, cs) {
				if len(labels) == 2 && (pod.w.sts == nil || !strings.HasPrefix(labels[0], pod.w.sts.Name+"-")) {
					continue
				}
				n, _ := portNumber(pod.c, p.TargetPort)
				return pod, n, nil
			}
		}
		return nil, 0, fmt.Errorf("%s: Service %s has no port %d to a lectern pod", raw, s.Name, port)
	}
	return nil, 0, fmt.Errorf("%s: no Service %s in the manifests", raw, svcName)
}

// checkURLs checks the URLs one role gives for another: each reaches a Service of that role, at the
// port it listens on.
func (o *k8sObjects) checkURLs(t *testing.T, cs []*k8sContainer) {
	for _, c := range cs {
		for flag, role := range map[string]string{"upstream": "origin", "purge-origins": "origin", "purge-edges": "edge"} {
			v := c.cfg.vals[flag]
			if v == "" {
				continue
			}
			for _, raw := range strings.Split(v, ",") {
				to, port, err := o.resolve(t, raw, cs)
				if err != nil {
					t.Errorf("%s: --%s %v", c.cfg.c.where, flag, err)
					continue
				}
				if to.cfg.role.name != role || port != to.cfg.listenPort(t) {
					t.Errorf("%s: --%s %s reaches lectern %s on port %d, want lectern %s on its --listen port", c.cfg.c.where, flag, raw, to.cfg.role.name, port, role)
				}
			}
		}
	}
}

// parseBytes reads a size as lectern's byte-size flags do ("90GiB", "2GB", "1048576").
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult, s = u.mult, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return int64(n * float64(mult)), nil
}
