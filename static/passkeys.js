// Passkeys on the idp's pages: the browser's WebAuthn API, and nothing else.
//
// A button with data-passkey="create" or "get" starts a ceremony: it posts its form's
// fields (the CSRF token among them) as JSON to data-options, hands the options it gets
// to navigator.credentials, posts the fields again with the credential to data-finish,
// and goes where the answer says. Errors are shown in the element named by data-status.
// Without JavaScript, or in a browser without WebAuthn's JSON methods, the buttons stay
// hidden and the pages work as before.
"use strict";

(function () {
  const supported = window.PublicKeyCredential &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";
  if (!supported) {
    return;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(answer.message || "That did not work. Please try again.");
    }
    return answer;
  }

  async function ceremony(button) {
    const fields = Object.fromEntries(new FormData(button.form));
    const options = await post(button.dataset.options, fields);
    const credential = button.dataset.passkey === "create"
      ? await navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
      })
      : await navigator.credentials.get({
        publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
      });
    const done = await post(button.dataset.finish, { ...fields, credential: credential.toJSON() });
    window.location.assign(done.next);
  }

  for (const button of document.querySelectorAll("button[data-passkey]")) {
    const status = document.getElementById(button.dataset.status);
    button.hidden = false;
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      if (!button.form.reportValidity()) {
        return;
      }
      status.hidden = true;
      button.disabled = true;
      try {
        await ceremony(button);
      } catch (error) {
        status.textContent = error.name === "NotAllowedError"
          ? "The passkey was not used. Try again when you are ready."
          : error.message;
        status.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }
})();
