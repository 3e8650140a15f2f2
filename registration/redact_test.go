package registration_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/ekslink/ekslink/registration"
)

func TestActivationCodeNeverPrintsOrLogs(t *testing.T) {
	act := registration.Activation{ID: testActivationID, Code: testActivationCode}
	in := registration.RegisterInput{ActivationID: testActivationID, ActivationCode: testActivationCode, Fingerprint: "fp", PublicKey: "pk"}
	reg := registration.ClusterRegistration{ClusterARN: "arn:aws:eks:eu-west-1:111122223333:cluster/c", Activation: act, Expiry: time.Unix(0, 0), Region: "eu-west-1"}
	var out strings.Builder
	for _, v := range []any{act, &act, in, &in, reg, &reg} {
		fmt.Fprintf(&out, "%v %+v %#v %s\n", v, v, v, v)
	}
	var sl bytes.Buffer
	slogr := logr.FromSlogHandler(slog.NewJSONHandler(&sl, nil))
	slogr.Info("x", "activation", act, "input", in, "registration", reg)
	slog.New(slog.NewJSONHandler(&sl, nil)).Info("x", "activation", act, "input", in, "registration", reg)
	out.WriteString(sl.String())
	funcr.New(func(prefix, args string) { out.WriteString(args + "\n") }, funcr.Options{}).
		Info("x", "activation", act, "input", in, "registration", reg)
	if strings.Contains(out.String(), testActivationCode) {
		t.Fatalf("the activation code is printed or logged:\n%s", out.String())
	}
	if !strings.Contains(out.String(), testActivationID) {
		t.Fatalf("the activation id is missing:\n%s", out.String())
	}
}
