// The hosted verification page, enhanced: live status over Server-Sent
// Events (a long poll where EventSource is missing), the finish posted by
// itself when the verification ends, the resend cool-down counted down, and
// the code of a text filled in by WebOTP. Without this script the page
// works through its forms.
(function () {
  "use strict";
  var flow = document.getElementById("flow");
  if (!flow) { return; }
  var statusEl = document.getElementById("status");
  var finishForm = document.getElementById("finish-form");
  var finishing = false;
  // Statuses that answer Entra by themselves; failed and canceled leave the
  // person the choice of another call or text.
  var autoFinish = { approved: true, denied: true, expired: true, max_attempts_reached: true };

  function show(st) {
    if (!st || !st.status) { return; }
    flow.setAttribute("data-status", st.status);
    if (statusEl.textContent !== st.text) { statusEl.textContent = st.text; }
    if (autoFinish[st.status] && !finishing) {
      finishing = true;
      finishForm.submit();
    }
  }

  function poll(seq) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", flow.getAttribute("data-poll") + "?seq=" + seq);
    xhr.onload = function () {
      if (xhr.status !== 200) { return; }
      var st = JSON.parse(xhr.responseText);
      show(st);
      if (!st.final) { poll(st.seq); }
    };
    xhr.onerror = function () { setTimeout(function () { poll(seq); }, 5000); };
    xhr.send();
  }

  // A form the person submitted (a code, another channel, "this wasn't
  // me") answers by itself: the status it causes must not post the finish
  // too, which would cancel that navigation and meet a flow already
  // answered.
  Array.prototype.forEach.call(document.forms, function (f) {
    if (f !== finishForm) {
      f.addEventListener("submit", function () { finishing = true; });
    }
  });

  if (flow.getAttribute("data-status") === "pending") {
    if (window.EventSource) {
      var es = new EventSource(flow.getAttribute("data-events"));
      es.addEventListener("status", function (ev) {
        var st = JSON.parse(ev.data);
        show(st);
        if (st.final) { es.close(); }
      });
    } else {
      poll(-1);
    }
  } else {
    show({ status: flow.getAttribute("data-status"), text: statusEl.textContent });
  }

  // The resend cool-down.
  var left = parseInt(flow.getAttribute("data-cooldown"), 10) || 0;
  var resend = document.getElementById("resend");
  var cooldown = document.getElementById("cooldown");
  if (left > 0 && resend && cooldown) {
    var template = cooldown.getAttribute("data-template").replace(String(left), "{seconds}");
    var timer = setInterval(function () {
      left -= 1;
      if (left <= 0) {
        clearInterval(timer);
        resend.disabled = false;
        resend.removeAttribute("aria-describedby");
        cooldown.textContent = "";
        return;
      }
      cooldown.textContent = template.replace("{seconds}", String(left));
    }, 1000);
  }

  // WebOTP: a text ending "@<host> #<code>" fills the code in.
  var code = document.getElementById("code");
  if (code && "OTPCredential" in window) {
    var ac = new AbortController();
    code.form.addEventListener("submit", function () { ac.abort(); });
    navigator.credentials.get({ otp: { transport: ["sms"] }, signal: ac.signal }).then(function (otp) {
      if (otp && otp.code) {
        code.value = otp.code;
        code.form.submit();
      }
    }).catch(function () { /* the person types it */ });
  }
})();
