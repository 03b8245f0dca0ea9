// Form Post Response Mode §2: post the authorization response to the application at once.
// A static file, because the pages' CSP allows no inline script; the page's button does the
// same without JavaScript.
document.getElementById("form-post").submit();
