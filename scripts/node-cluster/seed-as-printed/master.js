const net = require('net');
const fork = require('child_process').fork;
var handle = net._createServerHandle('127.0.0.1', 0);
for (var i = 0; i < 4; i++) {
fork('./worker').send({}, handle);
}
