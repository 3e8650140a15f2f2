package webhook

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The hand-written encoders write what json.Marshal writes, for the values patch() adds and for
// the others (which they hand to json.Marshal).
func TestLeanEncodersMatchJSONMarshal(t *testing.T) {
	exp := int64(86400)
	env := []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: testARN}, {Name: "EMPTY"}, {Name: "HTML", Value: `<a&b> "q" \ é`},
		{Name: "FROM", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	got, err := appendEnvJSON(nil, env)
	want, _ := json.Marshal(env)
	if err != nil || "["+string(got)+"]" != string(want) {
		t.Errorf("env:\n got [%s] (%v)\nwant %s", got, err, want)
	}
	mounts := []corev1.VolumeMount{{Name: "aws-iam-token", ReadOnly: true, MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount"},
		{Name: "rw", MountPath: `C:\x`}, {Name: "sub", MountPath: "/s", SubPath: "p"}}
	got, err = appendMountsJSON(nil, mounts)
	want, _ = json.Marshal(mounts)
	if err != nil || "["+string(got)+"]" != string(want) {
		t.Errorf("mounts:\n got [%s] (%v)\nwant %s", got, err, want)
	}
	token := func(aud string, exp *int64) corev1.Volume {
		return corev1.Volume{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: aud, ExpirationSeconds: exp, Path: "token"}}}}}}
	}
	mode := int32(0o400)
	withMode := token("sts.amazonaws.com", &exp)
	withMode.Projected.DefaultMode = &mode
	for _, op := range []PatchOperation{
		{Op: "add", Path: "/spec/volumes/0", Value: token("sts.amazonaws.com", &exp)},
		{Op: "add", Path: "/spec/volumes", Value: []corev1.Volume{token("", nil)}},
		{Op: "add", Path: "/spec/volumes/0", Value: token("", nil)},
		{Op: "add", Path: "/spec/volumes/0", Value: withMode},
		{Op: "add", Path: "/spec/volumes/0", Value: corev1.Volume{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		{Op: "add", Path: "/metadata/labels/eks.amazonaws.com~1pod-identity", Value: "true"},
	} {
		got, err := appendOperationJSON(nil, op)
		want, _ := json.Marshal(op)
		if err != nil || string(got) != string(want) {
			t.Errorf("operation:\n got %s (%v)\nwant %s", got, err, want)
		}
	}
}
