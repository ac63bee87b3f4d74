// The demo provider's checkout: the URL is /pay/demo/<topup id>#<secret>. The secret stays in the
// fragment (never sent in a request line); this page posts it back to quote and to complete.
"use strict";

(function () {
  const topupId = decodeURIComponent(location.pathname.split("/").pop() || "");
  const secret = decodeURIComponent(location.hash.replace(/^#/, ""));
  const amountEl = document.getElementById("amount");
  const statusEl = document.getElementById("status");
  const payEl = document.getElementById("pay");
  const messageEl = document.getElementById("message");

  function say(text, isError) {
    messageEl.textContent = text;
    messageEl.className = isError ? "error" : "";
  }

  async function call(path) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ topup_id: topupId, secret: secret }),
      credentials: "omit",
    });
    const body = await response.json();
    if (!body.success) {
      throw new Error(body.message || body.error_code || "failed");
    }
    return body.data;
  }

  function show(data) {
    amountEl.textContent = String(data.amount);
    statusEl.textContent = data.status;
    payEl.disabled = data.status !== "PENDING";
  }

  payEl.addEventListener("click", async function () {
    payEl.disabled = true;
    say("paying…", false);
    try {
      const data = await call("/api/payments/demo/complete");
      show(data);
      say("Paid: your balance is now " + data.credit_balance + " credits.", false);
    } catch (err) {
      say(err.message, true);
      payEl.disabled = false;
    }
  });

  // back to the app's Credits page, which follows this top-up until it is paid
  if (topupId) {
    document.getElementById("back").href = "/?topup=" + encodeURIComponent(topupId);
  }

  if (!topupId || !secret) {
    say("This checkout link is incomplete.", true);
    return;
  }
  call("/api/payments/demo/quote").then(show, function (err) {
    statusEl.textContent = "unknown";
    say(err.message, true);
  });
})();
