// capture.js (being written)
var SCHEMA = 1;
var VERSION = "0.0.0";
