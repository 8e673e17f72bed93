package csc_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
)

// A portal signs two hashes for a citizen: it lists the citizen's
// credentials, has the SMS code sent, authorises exactly those hashes with
// the code the citizen reads to it, and signs them with the SAD. The
// service URL and API key are the portal's; readCodeFromCitizen stands
// for the portal's own page where the citizen types the SMS code.
func Example_portalSignsHashes() {
	const service, apiKey = "https://firma.example.es", "portal-api-key"
	call := func(method string, in, out any) error {
		body, _ := json.Marshal(in)
		req, _ := http.NewRequest(http.MethodPost, service+"/csc/v2/"+method, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			json.NewDecoder(resp.Body).Decode(&e)
			return fmt.Errorf("%s: %s: %s", method, e.Error, e.Description)
		}
		if out != nil {
			return json.NewDecoder(resp.Body).Decode(out)
		}
		return nil
	}
	readCodeFromCitizen := func() string { return "123456" }

	var list struct{ CredentialIDs []string }
	if err := call("credentials/list", map[string]any{"userID": "12345678Z"}, &list); err != nil || len(list.CredentialIDs) == 0 {
		return
	}
	cred := list.CredentialIDs[0]
	var hashes []string
	for _, doc := range []string{"first document", "second document"} {
		h := sha256.Sum256([]byte(doc))
		hashes = append(hashes, base64.StdEncoding.EncodeToString(h[:]))
	}
	if err := call("credentials/sendOTP", map[string]any{"credentialID": cred}, nil); err != nil {
		return
	}
	var auth struct{ SAD string }
	if err := call("credentials/authorize", map[string]any{"credentialID": cred, "numSignatures": len(hashes), "hashes": hashes,
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "authData": []map[string]string{{"id": "otp", "value": readCodeFromCitizen()}}}, &auth); err != nil {
		return
	}
	var signed struct{ Signatures []string }
	if err := call("signatures/signHash", map[string]any{"credentialID": cred, "SAD": auth.SAD, "hashes": hashes,
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}, &signed); err != nil {
		return
	}
	fmt.Println(len(signed.Signatures), "signatures")
}
