package deploy_test

import (
	"encoding/base64"
	"fmt"

	"github.com/ekslink/ekslink/deploy"
	"github.com/ekslink/ekslink/manifest"
)

// The Go equivalent of the README's sed command.
func ExampleConnectorTemplate() {
	out, err := manifest.Substitute(deploy.ConnectorTemplate(), map[string]string{
		manifest.PlaceholderRegion:         "eu-west-1",
		manifest.PlaceholderActivationID:   "5a2ee3b4-8f3c-4c5e-9a7e-0f1b2c3d4e5f",
		manifest.PlaceholderActivationCode: base64.StdEncoding.EncodeToString([]byte("AbCdEfGhIjKlMnOpQrStUvWx")),
		manifest.PlaceholderConnectorImage: manifest.DefaultConnectorImageRepository + ":" + manifest.DefaultVersion,
		manifest.PlaceholderSSMAgentImage:  manifest.DefaultSSMAgentImage,
		manifest.PlaceholderConsoleARN:     "arn:aws:iam::123456789012:role/Admin",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	objs, err := manifest.Decode(out)
	fmt.Println(len(objs), err)
	// Output: 11 <nil>
}
