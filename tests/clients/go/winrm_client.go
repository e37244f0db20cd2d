// Command winrm_client runs one WinRS command through the Go masterzen/winrm client and
// prints {"stdout","stderr","exit_code"} as JSON, for hopgate's integration tests.
//
// It is built against Debian's golang-github-masterzen-winrm-dev (a 2020 snapshot), whose
// API is: winrm.NewEndpoint(host, port, https, insecure, caCert, cert, key, timeout),
// winrm.NewParameters(timeout, locale, envelopeSize) with a TransportDecorator, and
// Client.RunWithString(command, stdin). The client always posts to /wsman.
//
// Auth: -auth certificate (TLS client cert + the secprofile/https/mutual Authorization header,
// via winrm.ClientAuthRequest), basic, or ntlm (go-ntlmssp, no message encryption). Without
// -auth, a -cert/-key pair means certificate and otherwise basic.
//
// Exit codes: 0 success, 2 the server refused (HTTP error status, WS-Man fault),
// 3 authentication rejected (HTTP 401), 1 usage, connection or local errors.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"strings"
	"time"

	"github.com/masterzen/winrm"
)

type result struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exit_code"`
	Client   string `json:"client"`
}

type failure struct {
	Error      string `json:"error"`
	Type       string `json:"type"`
	HTTPStatus int    `json:"http_status,omitempty"`
}

func emit(v interface{}, code int) {
	out, err := json.Marshal(v)
	if err != nil {
		fmt.Println(`{"error":"cannot encode result","type":"internal"}`)
		os.Exit(1)
	}
	fmt.Println(string(out))
	os.Exit(code)
}

func fail(typ string, err error, code int) {
	msg := err.Error()
	status := 0
	// masterzen reports non-200 answers as "http error <code>: ..." or
	// "http response error: <code> - ..."
	for _, prefix := range []string{"http error ", "http response error: "} {
		if i := strings.Index(msg, prefix); i >= 0 {
			fmt.Sscanf(msg[i+len(prefix):], "%d", &status)
		}
	}
	if status == 401 {
		code = 3
	} else if status != 0 {
		code = 2
	} else if strings.Contains(msg, "unknown error") {
		code = 1 // masterzen's wording for a transport failure (connection refused, TLS, timeout)
	}
	emit(failure{Error: msg, Type: typ, HTTPStatus: status}, code)
}

func readOptional(path string) []byte {
	if path == "" {
		return nil
	}
	data, err := ioutil.ReadFile(path)
	if err != nil {
		fail("usage", err, 1)
	}
	return data
}

func main() {
	host := flag.String("host", "127.0.0.1", "server host")
	port := flag.Int("port", 5986, "server port")
	https := flag.Bool("https", false, "use https")
	cacert := flag.String("cacert", "", "CA certificate PEM to verify the server")
	cert := flag.String("cert", "", "client certificate PEM (certificate auth)")
	key := flag.String("key", "", "client key PEM (certificate auth)")
	user := flag.String("user", "", "user name (basic/ntlm)")
	password := flag.String("password", "", "password (basic/ntlm)")
	insecure := flag.Bool("insecure", false, "skip server certificate verification")
	auth := flag.String("auth", "", "certificate, basic or ntlm (default: certificate when -cert is set, else basic)")
	cmd := flag.String("cmd", "", "command line to run")
	stdin := flag.String("stdin", "", "text for the command's stdin")
	timeout := flag.String("operation-timeout", "PT60S", "WS-Man OperationTimeout")
	// Report bad flags as JSON with exit 1 (the flag package's default exit 2 means "refused" here).
	flag.CommandLine.Init(os.Args[0], flag.ContinueOnError)
	flag.CommandLine.SetOutput(ioutil.Discard)
	if err := flag.CommandLine.Parse(os.Args[1:]); err != nil {
		fail("usage", err, 1)
	}

	if *cmd == "" {
		fail("usage", fmt.Errorf("-cmd is required"), 1)
	}
	mode := *auth
	if mode == "" {
		if *cert != "" {
			mode = "certificate"
		} else {
			mode = "basic"
		}
	}

	certPEM := readOptional(*cert)
	keyPEM := readOptional(*key)
	endpoint := winrm.NewEndpoint(*host, *port, *https, *insecure, readOptional(*cacert), certPEM, keyPEM, 60*time.Second)

	params := winrm.NewParameters(*timeout, "en-US", 153600)
	switch mode {
	case "certificate":
		if certPEM == nil || keyPEM == nil {
			fail("usage", fmt.Errorf("certificate auth needs -cert and -key"), 1)
		}
		params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientAuthRequest{} }
	case "ntlm":
		params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	case "basic":
	default:
		fail("usage", fmt.Errorf("unknown -auth %q", mode), 1)
	}

	client, err := winrm.NewClientWithParameters(endpoint, *user, *password, params)
	if err != nil {
		fail("client", err, 1)
	}
	stdout, stderr, code, err := client.RunWithString(*cmd, *stdin)
	if err != nil {
		fail("run", err, 2)
	}
	emit(result{Stdout: stdout, Stderr: stderr, ExitCode: code, Client: "masterzen/winrm (Debian)"}, 0)
}
