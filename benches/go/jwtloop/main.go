// jwtloop is the optional Go comparison of benches/apply.rs: bare loops of
// the official Go jwt library (Debian's v2.3.0, GOPATH mode, no network)
// over user JWTs, timed inside the program so that neither start-up nor
// key generation nor reading input counts.
//
//	jwtloop sign N R    generate one account key, R signing keys and N user
//	                    keys (not timed), then encode and sign N scoped
//	                    user JWTs, user i signed by signing key i mod R,
//	                    with a name, a tag and the issuer account, as
//	                    natsform's users of a scoped role are (timed)
//	jwtloop verify      read user JWTs, one a line, from stdin (not timed),
//	                    then decode and verify each one (timed)
//
// Output: one line, "<seconds> <count>". Keys are made in memory for this
// run and never leave it.
//
// Build: GOPATH=/usr/share/gocode GO111MODULE=off go build -o jwtloop main.go
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "jwtloop: "+format+"\n", args...)
	os.Exit(1)
}

func publicKey(kp nkeys.KeyPair) string {
	pub, err := kp.PublicKey()
	if err != nil {
		fail("public key: %v", err)
	}
	return pub
}

func sign(n, roles int) {
	account, err := nkeys.CreateAccount()
	if err != nil {
		fail("account key: %v", err)
	}
	signers := make([]nkeys.KeyPair, roles)
	for r := range signers {
		if signers[r], err = nkeys.CreateAccount(); err != nil {
			fail("signing key: %v", err)
		}
	}
	users := make([]string, n)
	names := make([]string, n)
	tags := make([]string, n)
	for i := range users {
		kp, err := nkeys.CreateUser()
		if err != nil {
			fail("user key: %v", err)
		}
		users[i] = publicKey(kp)
		names[i] = fmt.Sprintf("u%03d", i)
		tags[i] = fmt.Sprintf("team:t%d", i%7)
	}
	accountPub := publicKey(account)
	total := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		uc := jwt.NewUserClaims(users[i])
		uc.Name = names[i]
		uc.IssuerAccount = accountPub
		uc.Tags.Add(tags[i])
		uc.SetScoped(true)
		token, err := uc.Encode(signers[i%roles])
		if err != nil {
			fail("encode: %v", err)
		}
		total += len(token)
	}
	elapsed := time.Since(start).Seconds()
	if total == 0 && n > 0 {
		fail("no output")
	}
	fmt.Printf("%.6f %d\n", elapsed, n)
}

func verify() {
	var tokens []string
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		if line := in.Text(); line != "" {
			tokens = append(tokens, line)
		}
	}
	if err := in.Err(); err != nil {
		fail("reading stdin: %v", err)
	}
	start := time.Now()
	for _, t := range tokens {
		if _, err := jwt.DecodeUserClaims(t); err != nil {
			fail("decode: %v", err)
		}
	}
	elapsed := time.Since(start).Seconds()
	fmt.Printf("%.6f %d\n", elapsed, len(tokens))
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "sign" {
		n, err1 := strconv.Atoi(os.Args[2])
		roles, err2 := strconv.Atoi(os.Args[3])
		if err1 != nil || err2 != nil || n < 0 || roles < 1 {
			fail("usage: jwtloop sign N R")
		}
		sign(n, roles)
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "verify" {
		verify()
		return
	}
	fail("usage: jwtloop sign N R | jwtloop verify < tokens")
}
