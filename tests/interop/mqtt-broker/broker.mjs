// An independent MQTT broker for coldtrace's interop tests: aedes (Node.js), not Mosquitto.
//
// Usage: node broker.mjs PORT
//
// Default in-memory persistence (aedes-persistence): sessions, subscriptions and queued QoS 1
// messages live only as long as this process. MQTT 3.1.1 (and 3.1) only: aedes refuses MQTT 5.
// Commands on standard input, one a line (the broker itself publishing, as a network server's
// embedded broker does):
//
//     publish <topic> <qos> <payload, base64>
//
// Prints "READY <port>" once it listens and "OK" after each command.
import net from "node:net";
import readline from "node:readline";
import { Aedes } from "aedes";

const port = Number(process.argv[2]);
const broker = await Aedes.createBroker();
const server = net.createServer(broker.handle);
await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
console.log(`READY ${port}`);

const commands = readline.createInterface({ input: process.stdin });
for await (const line of commands) {
    const [command, topic, qos, payload] = line.trim().split(" ");
    if (command !== "publish") {
        console.log(`ERROR unknown command ${command}`);
        continue;
    }
    await new Promise((resolve, reject) =>
        broker.publish(
            { cmd: "publish", topic, qos: Number(qos), retain: false, payload: Buffer.from(payload ?? "", "base64") },
            (err) => (err ? reject(err) : resolve()),
        ),
    );
    console.log("OK");
}
