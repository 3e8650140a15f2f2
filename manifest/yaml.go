package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Placeholders of the checked-in templates (deploy/), replaced with sed or Substitute, in the style
// of the EKS Connector's own manifest.
const (
	// PlaceholderRegion is the AWS region.
	PlaceholderRegion = "%AWS_REGION%"
	// PlaceholderActivationID is the activationId from "aws eks register-cluster".
	PlaceholderActivationID = "%EKS_ACTIVATION_ID%"
	// PlaceholderActivationCode is the BASE64 of the activationCode (it sits in a Secret's data).
	PlaceholderActivationCode = "%EKS_ACTIVATION_CODE%"
	// PlaceholderConnectorImage is the connector image.
	PlaceholderConnectorImage = "%EKS_CONNECTOR_IMAGE%"
	// PlaceholderSSMAgentImage is the SSM agent image.
	PlaceholderSSMAgentImage = "%SSM_AGENT_IMAGE%"
	// PlaceholderConsoleARN is the one IAM ARN the template lets the connector impersonate (add
	// more to the ClusterRole's resourceNames, or render with GrantedARNs).
	PlaceholderConsoleARN = "%EKS_CONSOLE_ARN%"
	// PlaceholderClusterName is the EKS cluster name (pod identity agent).
	PlaceholderClusterName = "%EKS_CLUSTER_NAME%"
	// PlaceholderPodIdentityImage is the pod identity agent image.
	PlaceholderPodIdentityImage = "%EKS_POD_IDENTITY_AGENT_IMAGE%"
)

// Sentinels stand in for placeholders that must pass a syntax check while rendering; they are
// replaced by the quoted placeholder afterwards so the template is valid YAML before and after sed.
const (
	codeSentinel = "ekslink-activation-code-placeholder"
	arnSentinel  = "arn:aws:iam::000000000000:role/ekslink-console-arn-placeholder"
)

// YAML renders objects as one multi-document YAML stream (kubectl apply -f), without the
// server-populated noise (creationTimestamp: null, status: {}).
func YAML(objs []runtime.Object) ([]byte, error) {
	var b bytes.Buffer
	for i, obj := range objs {
		m, err := toMap(obj)
		if err != nil {
			return nil, err
		}
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("manifest: marshalling %T: %w", obj, err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// droppedWhenEmpty are fields that the typed structs always serialize and that mean nothing empty
// (emptyDir: {} is meaningful and kept).
var droppedWhenEmpty = map[string]bool{"status": true, "resources": true, "updateStrategy": true, "spec": true}

// clean drops null creationTimestamps and meaningless empty maps at every level.
func clean(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if val == nil && k == "creationTimestamp" {
				delete(t, k)
				continue
			}
			if m, ok := val.(map[string]any); ok && len(m) == 0 && droppedWhenEmpty[k] {
				delete(t, k)
				continue
			}
			clean(val)
		}
	case []any:
		for _, e := range t {
			clean(e)
		}
	}
}

// Unstructured converts typed objects (as returned by the Render functions) for Apply.
func Unstructured(objs []runtime.Object) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, obj := range objs {
		m, err := toMap(obj)
		if err != nil {
			return nil, err
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out, nil
}

// toMap is obj as unstructured content without status and the server-populated noise (clean).
func toMap(obj runtime.Object) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("manifest: converting %T: %w", obj, err)
	}
	clean(m)
	delete(m, "status")
	return m, nil
}

// Decode parses a multi-document YAML (or JSON) stream into objects, skipping empty documents.
// Every object must have apiVersion, kind and metadata.name.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest: document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("manifest: document %d: apiVersion, kind and metadata.name are required", i)
		}
		out = append(out, u)
	}
}

var placeholderPattern = regexp.MustCompile(`%[A-Z][A-Z0-9_]*%`)

// ErrUnsubstituted is returned by Substitute when placeholders remain.
var ErrUnsubstituted = errors.New("manifest: placeholders left unsubstituted")

// Substitute replaces placeholders (keys such as PlaceholderRegion) with values, exactly like the
// sed command in the README, and fails with ErrUnsubstituted naming any placeholder left over.
// The value for PlaceholderActivationCode must already be base64, as with sed.
func Substitute(template []byte, values map[string]string) ([]byte, error) {
	out := string(template)
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = strings.ReplaceAll(out, k, values[k])
	}
	if left := placeholderPattern.FindAllString(out, -1); len(left) > 0 {
		sort.Strings(left)
		return nil, fmt.Errorf("%w: %s", ErrUnsubstituted, strings.Join(compact(left), ", "))
	}
	return []byte(out), nil
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// ConnectorTemplate is the connector deployment with default options and placeholders for the
// region, activation id and code, images and one granted ARN: the checked-in
// deploy/connector/eks-connector.yaml.
func ConnectorTemplate() ([]byte, error) {
	o := ConnectorOptions{
		Region:         PlaceholderRegion,
		ActivationID:   PlaceholderActivationID,
		ActivationCode: codeSentinel,
		Image:          PlaceholderConnectorImage,
		AgentImage:     PlaceholderSSMAgentImage,
		GrantedARNs:    []string{arnSentinel},
	}.withDefaults()
	objs, err := renderConnector(o)
	if err != nil {
		return nil, err
	}
	y, err := YAML(objs)
	if err != nil {
		return nil, err
	}
	s := string(y)
	s = strings.ReplaceAll(s, base64.StdEncoding.EncodeToString([]byte(codeSentinel)), "'"+PlaceholderActivationCode+"'")
	s = strings.ReplaceAll(s, arnSentinel, "'"+PlaceholderConsoleARN+"'")
	return []byte(templateHeader + s), nil
}

// PodIdentityAgentTemplate is the pod identity agent DaemonSet with default options and
// placeholders for the cluster name, region and image: the checked-in
// deploy/pod-identity-agent/eks-pod-identity-agent.yaml.
func PodIdentityAgentTemplate() ([]byte, error) {
	o := PodIdentityAgentOptions{
		ClusterName: PlaceholderClusterName,
		Region:      PlaceholderRegion,
		Image:       PlaceholderPodIdentityImage,
	}.withDefaults()
	y, err := YAML(renderPodIdentityAgent(o))
	if err != nil {
		return nil, err
	}
	return []byte(templateHeader + string(y)), nil
}

const templateHeader = "# Generated by manifest (go test ./deploy -update). Do not edit.\n" +
	"# Replace the placeholders (see docs/deploy.md), then kubectl apply -f -.\n"

// CanonicalYAML renders one object with sorted keys and JSON number types, so two objects that
// mean the same (one from a template, one typed) compare equal as strings. Diff tools can use it.
func CanonicalYAML(u *unstructured.Unstructured) (string, error) {
	j, err := u.MarshalJSON()
	if err != nil {
		return "", err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return "", err
	}
	clean(m)
	y, err := yaml.Marshal(m)
	return string(y), err
}
