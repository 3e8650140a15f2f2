package webhook

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// patch mutates pod (a copy) and returns the JSON Patch that does the same to the original, in the
// upstream's order and shape (pkg/handler/handler.go getPodSpecPatch): the pod-identity label,
// the volume (prepended), the containers, the init containers; then the opt-in fsGroup.
func patch(pod *corev1.Pod, pc *patchConfig, cfg *Config) ([]PatchOperation, bool) {
	tokenFile := path.Join(pc.mountPath, pc.tokenPath)
	if pod.Spec.NodeSelector[nodeSelectorOSBeta] == windowsOSValue || pod.Spec.NodeSelector[nodeSelectorOS] == windowsOSValue {
		tokenFile = `C:` + strings.ReplaceAll(tokenFile, "/", `\`)
	}

	changed := false
	nonRoot := false
	mutate := func(cs []corev1.Container) []corev1.Container {
		out := make([]corev1.Container, 0, len(cs))
		for i := range cs {
			c := &cs[i]
			if !pc.skipContainers[c.Name] {
				if addEnvAndMount(c, tokenFile, pc) {
					changed = true
				}
				nonRoot = nonRoot || runsAsNonRoot(pod.Spec.SecurityContext, c.SecurityContext)
			}
			out = append(out, *c)
		}
		return out
	}
	initContainers := mutate(pod.Spec.InitContainers)
	containers := mutate(pod.Spec.Containers)

	var ops []PatchOperation
	if pc.mode == ModeContainerCredentials {
		if pod.Labels == nil {
			ops = append(ops, PatchOperation{Op: "add", Path: "/metadata/labels", Value: map[string]string{PodIdentityLabel: podIdentityLabelEnabled}})
			pod.Labels = map[string]string{}
		} else {
			ops = append(ops, PatchOperation{Op: "add", Path: "/metadata/labels/" + escapePointer(PodIdentityLabel), Value: podIdentityLabelEnabled})
		}
		pod.Labels[PodIdentityLabel] = podIdentityLabelEnabled
		changed = true
	}

	if !hasVolume(pod.Spec.Volumes, pc.volumeName) {
		exp := pc.expiration
		vol := corev1.Volume{Name: pc.volumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: pc.audience, ExpirationSeconds: &exp, Path: pc.tokenPath,
			}}},
		}}}
		if pod.Spec.Volumes == nil {
			ops = append(ops, PatchOperation{Op: "add", Path: "/spec/volumes", Value: []corev1.Volume{vol}})
		} else {
			ops = append(ops, PatchOperation{Op: "add", Path: "/spec/volumes/0", Value: vol})
		}
		pod.Spec.Volumes = append([]corev1.Volume{vol}, pod.Spec.Volumes...)
		changed = true
	}

	ops = append(ops, PatchOperation{Op: "add", Path: "/spec/containers", Value: containers})
	pod.Spec.Containers = containers
	if len(initContainers) > 0 {
		ops = append(ops, PatchOperation{Op: "add", Path: "/spec/initContainers", Value: initContainers})
		pod.Spec.InitContainers = initContainers
	}

	if cfg.FSGroup > 0 && nonRoot && (pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.FSGroup == nil) {
		g := cfg.FSGroup
		if pod.Spec.SecurityContext == nil {
			ops = append(ops, PatchOperation{Op: "add", Path: "/spec/securityContext", Value: &corev1.PodSecurityContext{FSGroup: &g}})
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
		} else {
			ops = append(ops, PatchOperation{Op: "add", Path: "/spec/securityContext/fsGroup", Value: g})
		}
		pod.Spec.SecurityContext.FSGroup = &g
		changed = true
	}
	return ops, changed
}

// addEnvAndMount adds the mode's variables and the token mount to c (upstream addEnvToContainer).
// A container that already sets the mode's credential variables, a region and
// AWS_STS_REGIONAL_ENDPOINTS is left alone; otherwise only missing variables are added, and the
// mount unless a mount of the volume's name exists.
func addEnvAndMount(c *corev1.Container, tokenFile string, pc *patchConfig) bool {
	var credsDefined, regionDefined, stsDefined bool
	credVars := [2]string{EnvRoleARN, EnvWebIdentityTokenFile}
	if pc.mode == ModeContainerCredentials {
		credVars = [2]string{EnvContainerCredentialsURI, EnvContainerAuthTokenFile}
	}
	for _, e := range c.Env {
		switch e.Name {
		case credVars[0], credVars[1]:
			credsDefined = true
		case EnvRegion, EnvDefaultRegion:
			regionDefined = true
		case EnvSTSRegionalEndpoints:
			stsDefined = true
		}
	}
	if credsDefined && regionDefined && stsDefined {
		return false
	}

	changed := false
	env := c.Env
	if !stsDefined && pc.regionalSTS {
		env = append(env, corev1.EnvVar{Name: EnvSTSRegionalEndpoints, Value: regionalSTSValue})
		changed = true
	}
	if !regionDefined && pc.region != "" {
		env = append(env, corev1.EnvVar{Name: EnvDefaultRegion, Value: pc.region}, corev1.EnvVar{Name: EnvRegion, Value: pc.region})
		changed = true
	}
	if !credsDefined {
		if pc.mode == ModeContainerCredentials {
			env = append(env, corev1.EnvVar{Name: EnvContainerCredentialsURI, Value: pc.fullURI}, corev1.EnvVar{Name: EnvContainerAuthTokenFile, Value: tokenFile})
		} else {
			env = append(env, corev1.EnvVar{Name: EnvRoleARN, Value: pc.roleARN}, corev1.EnvVar{Name: EnvWebIdentityTokenFile, Value: tokenFile})
		}
		changed = true
	}
	c.Env = env

	for _, m := range c.VolumeMounts {
		if m.Name == pc.volumeName {
			return changed
		}
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: pc.volumeName, ReadOnly: true, MountPath: pc.mountPath})
	return true
}

// runsAsNonRoot reports whether the container is declared to run as a non-root user: a non-zero
// runAsUser, else runAsNonRoot (each from the container's securityContext, else the pod's).
func runsAsNonRoot(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) bool {
	var user *int64
	var nonRoot *bool
	if pod != nil {
		user, nonRoot = pod.RunAsUser, pod.RunAsNonRoot
	}
	if c != nil && c.RunAsUser != nil {
		user = c.RunAsUser
	}
	if c != nil && c.RunAsNonRoot != nil {
		nonRoot = c.RunAsNonRoot
	}
	if user != nil {
		return *user != 0
	}
	return nonRoot != nil && *nonRoot
}

func hasVolume(vs []corev1.Volume, name string) bool {
	for _, v := range vs {
		if v.Name == name {
			return true
		}
	}
	return false
}

// escapePointer escapes a JSON Pointer reference token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
