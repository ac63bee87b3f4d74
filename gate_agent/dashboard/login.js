// PIN login: on success the server sets an HttpOnly session cookie and "/" serves the dashboard.
"use strict";
(function () {
  const form = document.getElementById("login-form");
  const pin = document.getElementById("pin");
  const error = document.getElementById("login-error");
  const button = document.getElementById("login-button");
  let unlockTimer = null;

  function lockFor(seconds) {
    button.disabled = true;
    pin.disabled = true;
    let left = seconds;
    const tick = () => {
      error.textContent = "Login locked after too many wrong PINs. Try again in " + left + " s.";
      error.dataset.state = "locked";
      if (left-- <= 0) {
        clearInterval(unlockTimer);
        button.disabled = false;
        pin.disabled = false;
        error.textContent = "";
        error.dataset.state = "";
      }
    };
    tick();
    unlockTimer = setInterval(tick, 1000);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    let response;
    try {
      response = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ pin: pin.value }),
        credentials: "same-origin",
      });
    } catch (e) {
      error.textContent = "Cannot reach the gate. Check the network.";
      error.dataset.state = "network";
      return;
    }
    if (response.ok) {
      location.replace("/");
      return;
    }
    const body = await response.json().catch(() => ({}));
    pin.value = "";
    if (response.status === 429) {
      lockFor(body.retry_after_s || 60);
    } else if (response.status === 401) {
      error.textContent = "Wrong PIN. " + (body.tries_left ?? "?") + " tries left.";
      error.dataset.state = "wrong";
    } else {
      error.textContent = body.message || "Login failed.";
      error.dataset.state = "error";
    }
  });
})();
