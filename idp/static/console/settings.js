// The branding page's preview follows the form as the admin types (without JavaScript it
// follows on "Preview", a submit button): the iframe loads the preview URL with the edited
// name, colour and logo. Nothing is saved until "Save".
(function () {
  "use strict";
  var form = document.getElementById("branding-form");
  var frame = document.getElementById("preview");
  if (!form || !frame) { return; }
  var timer = null;

  function update() {
    var params = new URLSearchParams({
      name: form.elements.namedItem("name").value,
      colour: form.elements.namedItem("colour").value,
      logo: form.elements.namedItem("logo_url").value
    });
    var url = frame.getAttribute("data-preview") + "?" + params.toString();
    if (frame.getAttribute("src") !== url) { frame.setAttribute("src", url); }
  }

  form.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(update, 400);
  });
  document.getElementById("preview-button").addEventListener("click", function (event) {
    event.preventDefault();  // no round trip: the preview is already what the form says
    window.clearTimeout(timer);
    update();
  });
}());
