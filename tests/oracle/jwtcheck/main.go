// jwtcheck is natsform's test oracle: it asks the official Go jwt library
// (Debian's v2.3.0, GOPATH mode) what it thinks of tokens natsform wrote.
//
// Input, one item per line on stdin:
//
//	<jwt>                      decode, validate, re-marshal
//	creds <user-jwt> <seed>    print jwt.FormatUserConfig's output
//
// Output: one JSON object per input line.
//
// Run: GOPATH=/usr/share/gocode GO111MODULE=off go run main.go < tokens
package main

import (
	"bufio"
	"crypto/sha512"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
)

type result struct {
	Type          string          `json:"type"`
	OK            bool            `json:"ok"`
	DecodeError   string          `json:"decode_error,omitempty"`
	Errors        []string        `json:"errors"`
	Warnings      []string        `json:"warnings"`
	Subject       string          `json:"subject"`
	Issuer        string          `json:"issuer"`
	JTI           string          `json:"jti"`
	JTIRecomputed string          `json:"jti_recomputed"`
	Payload       string          `json:"payload"`
	Remarshal     string          `json:"remarshal"`
	Claims        json.RawMessage `json:"claims,omitempty"`
	Creds         string          `json:"creds,omitempty"`
}

func check(token string) result {
	r := result{Errors: []string{}, Warnings: []string{}}
	if parts := strings.Split(token, "."); len(parts) == 3 {
		if p, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			r.Payload = string(p)
		}
	}
	c, err := jwt.Decode(token)
	if err != nil {
		r.DecodeError = err.Error()
		return r
	}
	r.Type = string(c.ClaimType())
	cd := c.Claims()
	r.Subject, r.Issuer, r.JTI = cd.Subject, cd.Issuer, cd.ID

	// ClaimsData.hash is unexported; recompute it the same way.
	copyCD := *cd
	copyCD.ID = ""
	if j, err := json.Marshal(&copyCD); err == nil {
		h := sha512.New512_256()
		h.Write(j)
		r.JTIRecomputed = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil))
	}

	vr := jwt.CreateValidationResults()
	c.Validate(vr)
	for _, e := range vr.Errors() {
		r.Errors = append(r.Errors, e.Error())
	}
	r.Warnings = append(r.Warnings, vr.Warnings()...)
	if j, err := json.Marshal(c); err == nil {
		r.Remarshal = string(j)
		r.Claims = j
	} else {
		r.Errors = append(r.Errors, "re-marshal: "+err.Error())
	}
	r.OK = len(r.Errors) == 0
	return r
}

func creds(line string) result {
	r := result{Errors: []string{}, Warnings: []string{}}
	f := strings.Fields(line)
	if len(f) != 3 {
		r.DecodeError = "creds line needs a jwt and a seed"
		return r
	}
	out, err := jwt.FormatUserConfig(f[1], []byte(f[2]))
	if err != nil {
		r.DecodeError = err.Error()
		return r
	}
	r.OK = true
	r.Type = "creds"
	r.Creds = string(out)
	return r
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		var r result
		if strings.HasPrefix(line, "creds ") {
			r = creds(line)
		} else {
			r = check(line)
		}
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
