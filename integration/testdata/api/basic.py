"""docker-py against berth's API service: containers, images, networks,
volumes. Usage: basic.py IMAGE_REF (DOCKER_HOST names the service)."""
import sys

import docker

ref = sys.argv[1]
client = docker.from_env(version="auto")

assert client.ping()
assert client.version()["ApiVersion"] == "1.50"

img = client.images.pull(ref)
assert any(ref in t for t in img.tags), img.tags
assert any(ref in t for i in client.images.list() for t in i.tags)

out = client.containers.run(ref, ["echo", "hello py"], remove=True)
assert out == b"hello py\n", out

c = client.containers.run(ref, ["sh", "-c", "echo bg; sleep 300"], detach=True, name="pyc")
assert c.id in [x.id for x in client.containers.list()]
c.reload()
assert c.status == "running", c.status
for _ in range(50):
    if c.logs() == b"bg\n":
        break
    import time
    time.sleep(0.1)
assert c.logs() == b"bg\n", c.logs()
c.stop(timeout=1)
assert c.wait()["StatusCode"] == 137
c.remove()
assert "pyc" not in [x.name for x in client.containers.list(all=True)]

try:
    client.containers.get("nosuch")
    raise AssertionError("expected NotFound")
except docker.errors.NotFound:
    pass

net = client.networks.create("pynet")
assert "pynet" in [n.name for n in client.networks.list()]
net.remove()

vol = client.volumes.create("pyvol", labels={"k": "v"})
assert client.volumes.get("pyvol").attrs["Labels"] == {"k": "v"}
out = client.containers.run(ref, ["sh", "-c", "echo v > /d/f; cat /d/f"], remove=True,
                            volumes={"pyvol": {"bind": "/d", "mode": "rw"}})
assert out == b"v\n", out
vol.remove()
print("ok")
