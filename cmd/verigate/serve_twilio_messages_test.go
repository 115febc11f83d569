package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	apiv2010 "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/verigate/verigate/internal/redistest"
)

// twilioMessages returns twilio-go's own Api v2010 client, unchanged apart
// from where it connects.
func twilioMessages(t *testing.T, base, user, pass string) *apiv2010.ApiService {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient:  &http.Client{Transport: rehost{u}},
	}
	c.SetAccountSid(user)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: c}).Api
}

// statusReceiver is an IdP's StatusCallback endpoint that takes only what
// twilio-go's RequestValidator accepts under key.
type statusReceiver struct {
	srv      *httptest.Server
	got      chan url.Values
	rejected chan string
}

func newStatusReceiver(t *testing.T, key string) *statusReceiver {
	t.Helper()
	r := &statusReceiver{got: make(chan url.Values, 8), rejected: make(chan string, 8)}
	validator := client.NewRequestValidator(key)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := req.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		params := map[string]string{}
		for k := range req.PostForm {
			params[k] = req.PostForm.Get(k)
		}
		if !validator.Validate(r.srv.URL+req.URL.RequestURI(), params, req.Header.Get("X-Twilio-Signature")) {
			r.rejected <- req.Header.Get("X-Twilio-Signature")
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		r.got <- req.PostForm
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *statusReceiver) next(t *testing.T) url.Values {
	t.Helper()
	select {
	case f := <-r.got:
		return f
	case sig := <-r.rejected:
		t.Fatalf("a status callback failed twilio-go's signature validation (X-Twilio-Signature %q)", sig)
	case <-time.After(30 * time.Second):
		t.Fatal("no status callback within 30 s")
	}
	return nil
}

// TestTwilioMessagesWithTwilioGo: twilio-go's own CreateMessage relays a
// message through the gateway (console SMS to a mobile; to a landline, a
// call that reads the code, answered by serve --dev's test phone), and
// the StatusCallback it asked for arrives signed as Twilio signs, which
// twilio-go's RequestValidator accepts.
func TestTwilioMessagesWithTwilioGo(t *testing.T) {
	const secret = "a-callback-secret-0123456789"
	t.Run("memory", func(t *testing.T) {
		base, sms := startTwilioVerifyGateway(t, "VERIGATE_CALLBACKS_SECRET", secret)
		twilioMessagesFlow(t, base, sms)
	})
	t.Run("redis", func(t *testing.T) {
		// The message in the Redis store, its callback in the Redis queue.
		srv := redistest.StartServer(t)
		base, sms := startTwilioVerifyGateway(t, "VERIGATE_CALLBACKS_SECRET", secret, "VERIGATE_REDIS_URL", srv.URL())
		twilioMessagesFlow(t, base, sms)
	})
}

func twilioMessagesFlow(t *testing.T, base string, sms *testbuf.Buffer) {
	recv := newStatusReceiver(t, tvKey)
	api := twilioMessages(t, base, tvAccount, tvKey)

	m, err := api.CreateMessage((&apiv2010.CreateMessageParams{}).SetTo("+4915123456702").SetFrom("+15005550006").
		SetBody("Your Example login code is 318274"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^SM[0-9a-f]{32}$`).MatchString(str(m.Sid)) || str(m.Status) != "queued" || str(m.AccountSid) != tvAccount ||
		str(m.To) != "+4915123456702" || str(m.From) != "+15005550006" || str(m.Body) != "Your Example login code is 318274" ||
		str(m.Direction) != "outbound-api" || m.DateCreated == nil || str(m.Uri) != "/2010-04-01/Accounts/"+tvAccount+"/Messages/"+str(m.Sid)+".json" {
		t.Fatalf("created: %+v", m)
	}
	if body := smsBody(t, sms, "702"); body != "Your Example login code is 318274" {
		t.Errorf("console SMS %q", body)
	}

	// To a landline: the call reads the code; answered, the message is
	// delivered, and the StatusCallback says so.
	cb := recv.srv.URL + "/twilio/status?idp=example"
	m, err = api.CreateMessage((&apiv2010.CreateMessageParams{}).SetTo("+493012345678").SetMessagingServiceSid("MG0123456789abcdef0123456789abcdef").
		SetBody("Your Example login code is 552901").SetStatusCallback(cb))
	if err != nil {
		t.Fatal(err)
	}
	f := recv.next(t)
	if f.Get("MessageSid") != str(m.Sid) || f.Get("MessageStatus") != "delivered" || f.Get("AccountSid") != tvAccount ||
		f.Get("To") != "+493012345678" || f.Get("ApiVersion") != "2010-04-01" {
		t.Errorf("status callback %v", f)
	}

	// Wrong credentials, another account's path, and Twilio's required
	// parameters answer as Twilio does.
	if _, err := twilioMessages(t, base, tvAccount, "WrongKey0123456789abc").CreateMessage((&apiv2010.CreateMessageParams{}).
		SetTo("+4915123456703").SetFrom("+15005550006").SetBody("code 1234")); err == nil {
		t.Error("a wrong key relayed")
	} else {
		wantTwilioError(t, "wrong key", err, http.StatusUnauthorized, 20003)
	}
	_, err = api.CreateMessage((&apiv2010.CreateMessageParams{}).SetPathAccountSid("AC99999999999999999999999999999999").
		SetTo("+4915123456703").SetFrom("+15005550006").SetBody("code 1234"))
	wantTwilioError(t, "another account", err, http.StatusUnauthorized, 20003)
	_, err = api.CreateMessage((&apiv2010.CreateMessageParams{}).SetTo("+4915123456703").SetBody("code 1234"))
	wantTwilioError(t, "no From", err, http.StatusBadRequest, 21603)
	_, err = api.CreateMessage((&apiv2010.CreateMessageParams{}).SetTo("+4915123456703").SetFrom("+15005550006"))
	wantTwilioError(t, "no Body", err, http.StatusBadRequest, 21602)
	_, err = api.CreateMessage((&apiv2010.CreateMessageParams{}).SetTo("12").SetFrom("+15005550006").SetBody("code 1234"))
	wantTwilioError(t, "bad To", err, http.StatusBadRequest, 21211)
}
