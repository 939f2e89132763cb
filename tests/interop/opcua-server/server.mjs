// An independent OPC-UA server for coldtrace's interop tests: node-opcua, not asyncua.
//
// Usage: node server.mjs PORT PKI_DIR [--accept-unknown-certificates] [--tick-ms N]
//
// Address space (namespace urn:coldtrace:interop): objects fridge-a and fridge-b, each with an
// AnalogDataItem "<unit>.Temperature" (Double, EngineeringUnits degree Celsius). fridge-a keeps
// history (HistoryRead supported); fridge-b has none. With --tick-ms, fridge-a counts 1, 2, 3…
// every N ms, each value stamped with its own SourceTimestamp, so a client can check that it
// missed none. Commands on standard input, one a line:
//
//     write <unit> <value> <source time, ISO 8601> [<status code name>]
//
// Prints "READY <port>" once it listens and "OK" after each command.
import readline from "node:readline";
import {
    DataType,
    OPCUACertificateManager,
    OPCUAServer,
    MessageSecurityMode,
    SecurityPolicy,
    StatusCodes,
    Variant,
    standardUnits,
} from "node-opcua";

const NAMESPACE = "urn:coldtrace:interop";
const [portText, pkiDir, ...flags] = process.argv.slice(2);
const acceptUnknown = flags.includes("--accept-unknown-certificates");
const tickIndex = flags.indexOf("--tick-ms");
const tickMs = tickIndex >= 0 ? Number(flags[tickIndex + 1]) : 0;

const certificateManager = new OPCUACertificateManager({
    automaticallyAcceptUnknownCertificate: acceptUnknown,
    rootFolder: pkiDir,
});
await certificateManager.initialize();

const server = new OPCUAServer({
    port: Number(portText),
    hostname: "127.0.0.1",
    alternateHostname: ["127.0.0.1"],
    serverCertificateManager: certificateManager,
    securityModes: [
        MessageSecurityMode.None,
        MessageSecurityMode.Sign,
        MessageSecurityMode.SignAndEncrypt,
    ],
    securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
    allowAnonymous: true,
    buildInfo: { productName: "coldtrace-interop", manufacturerName: "coldtrace tests" },
});
await server.initialize();

const addressSpace = server.engine.addressSpace;
const namespace = addressSpace.registerNamespace(NAMESPACE);
const variables = {};
for (const unit of ["fridge-a", "fridge-b"]) {
    const object = namespace.addObject({
        organizedBy: addressSpace.rootFolder.objects,
        browseName: unit,
        nodeId: `s=${unit}`,
    });
    variables[unit] = namespace.addAnalogDataItem({
        componentOf: object,
        browseName: "Temperature",
        nodeId: `s=${unit}.Temperature`,
        dataType: "Double",
        engineeringUnitsRange: { low: -100, high: 100 },
        engineeringUnits: standardUnits.degree_celsius,
        minimumSamplingInterval: 10,
        value: new Variant({ dataType: DataType.Double, value: 0 }),
    });
}
addressSpace.installHistoricalDataNode(variables["fridge-a"], { maxOnlineValues: 100000 });

function write(unit, value, sourceTime, statusName) {
    const status = statusName ? StatusCodes[statusName] : StatusCodes.Good;
    if (status === undefined) throw new Error(`unknown status code ${statusName}`);
    variables[unit].setValueFromSource(
        new Variant({ dataType: DataType.Double, value }),
        status,
        sourceTime,
    );
}

if (tickMs > 0) {
    let count = 0;
    setInterval(() => {
        count += 1;
        write("fridge-a", count, new Date());
    }, tickMs);
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
    const [command, unit, value, time, status] = line.trim().split(/\s+/);
    try {
        if (command !== "write") throw new Error(`unknown command ${command}`);
        write(unit, Number(value), new Date(time), status);
        process.stdout.write("OK\n");
    } catch (err) {
        process.stdout.write(`ERROR ${err.message}\n`);
    }
});
lines.on("close", async () => {
    await server.shutdown(0);
    process.exit(0);
});

await server.start();
process.stdout.write(`READY ${server.endpoints[0].port}\n`);
